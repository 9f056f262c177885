//! Properties every family keeps, checked over all of them through [`family`]: generation is
//! deterministic (the same seed gives byte-identical tasks, another seed others, task `i`
//! whatever the count or the split across threads); and whatever the model writes, a scorer
//! does not panic, gives a score in `0..=1`, and scores the expected answer in any of the
//! accepted dresses 1 (for the families that score acts, with the record a perfect solver
//! leaves). [`floors`] checks each family's constant-answer floor.

use std::sync::OnceLock;

use proptest::prelude::*;

use super::*;

mod floors;

/// A few tasks of every family at every difficulty.
fn tasks() -> &'static [BenchTask] {
    static TASKS: OnceLock<Vec<BenchTask>> = OnceLock::new();
    TASKS.get_or_init(|| {
        let mut all = Vec::new();
        for f in FamilyId::ALL {
            for d in Difficulty::ALL {
                all.extend(family(f).generate(3, d, 17).unwrap());
            }
        }
        all
    })
}

/// The outcome a perfect solver leaves with `text` as its answer.
fn perfect(task: &BenchTask, text: &str) -> Outcome {
    match task.family {
        FamilyId::Tome => tome::perfect_outcome(task, text),
        FamilyId::Asr => asr::perfect_outcome(task, text),
        FamilyId::Icsd => icsd::perfect_outcome(task, text),
        FamilyId::Cplc | FamilyId::Msga | FamilyId::Wmrt | FamilyId::Imdp => Outcome::text(text),
    }
}

/// Text a model might send: arbitrary Unicode, or answer-shaped text with arbitrary parts.
fn reply() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        (
            "(ANSWER|answer|Final answer)[:=] ?",
            ".{0,40}",
            "( \\| .{0,20}){0,3}"
        )
            .prop_map(|(a, b, c)| format!("{a}{b}{c}")),
        (".{0,30}", "```[a-z]{0,5}\n", ".{0,30}", "\n```")
            .prop_map(|(a, b, c, d)| format!("{a}\n{b}{c}{d}")),
        "[-+0-9., eE|:TZ]{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn arbitrary_text_never_panics_a_scorer(text in reply(), pick in 0usize..1000) {
        let all = tasks();
        let task = &all[pick % all.len()];
        let s = family(task.family).score(task, &Outcome::text(text.clone()));
        prop_assert!((0.0..=1.0).contains(&s.value), "{} scored {}", task.id, s.value);
        let s = family(task.family).score(task, &perfect(task, &text));
        prop_assert!((0.0..=1.0).contains(&s.value), "{} scored {}", task.id, s.value);
        // Every task also survives the same text (cheap: scoring is parsing).
        for t in all {
            let s = family(t.family).score(t, &Outcome::text(text.clone()));
            prop_assert!((0.0..=1.0).contains(&s.value));
        }
    }

    #[test]
    fn the_expected_answer_scores_one_in_any_dress(
        pick in 0usize..1000,
        before in "[A-Za-z ,.]{0,60}",
        dress in 0usize..5,
    ) {
        let all = tasks();
        let task = &all[pick % all.len()];
        let answer = &task.expected;
        let text = match dress {
            0 => format!("{before}\nANSWER: {answer}"),
            1 => format!("{before}\n**Answer:** {}", answer.to_lowercase()),
            2 => format!("{before}\n```\nANSWER: {answer}\n```\n"),
            3 => format!("ANSWER: wrong guess\n{before}\nFinal answer = {answer}."),
            _ => format!("  answer :   {answer}  "),
        };
        let s = family(task.family).score(task, &perfect(task, &text));
        prop_assert_eq!(s.value, 1.0, "{}: {:?} → {}", task.id, text, s.reason);
    }
}

#[test]
fn same_seed_gives_byte_identical_tasks_and_another_seed_differs() {
    // 12 is the most tasks, 6 the fewest, any family's own check of this used.
    let json = |tasks: &[BenchTask]| serde_json::to_string(tasks).unwrap();
    for f in FamilyId::ALL {
        for d in Difficulty::ALL {
            let a = family(f).generate(12, d, 7).unwrap();
            let b = family(f).generate(12, d, 7).unwrap();
            let c = family(f).generate(12, d, 8).unwrap();
            assert_eq!(json(&a), json(&b), "{f} {d}: same seed");
            assert_ne!(json(&a[..6]), json(&c[..6]), "{f} {d}: another seed");
        }
        // Task i does not depend on the count.
        for seed in [5, 7] {
            let few = family(f).generate(3, Difficulty::Hard, seed).unwrap();
            let more = family(f).generate(9, Difficulty::Hard, seed).unwrap();
            assert_eq!(few[..], more[..3], "{f} seed {seed}");
        }
    }
}

#[test]
fn task_i_is_the_same_whatever_the_count_and_however_generation_is_split() {
    // 2 × PARALLEL_FROM tasks go to two threads where there are two cores; 5 stay on one.
    let many = 2 * framework::PARALLEL_FROM + 3;
    for f in FamilyId::ALL {
        let few = family(f).generate(5, Difficulty::Hard, 23).unwrap();
        let all = family(f).generate(many, Difficulty::Hard, 23).unwrap();
        assert_eq!(all.len(), many, "{f}");
        assert_eq!(&all[..5], &few[..], "{f}");
        let ids: std::collections::BTreeSet<&str> = all.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids.len(), many, "{f}: ids are unique and in order");
        assert!(
            all.windows(2)
                .all(|w| w[0].id < w[1].id || f == FamilyId::Wmrt),
            "{f}"
        );
    }
}
