//! The event vocabulary: its JSON form, names and orderings.

use super::*;

#[test]
fn a_link_status_from_before_the_range_and_the_blackout_end_still_reads() {
    let old = r#"{"simulated":true,"preset":"mars","mode":"ephemeris","one_way_ms":1000,
        "conjunction":"blackout","time_scale":60.0,"sim_time":"2021-10-08T00:00:00Z",
        "taken_at":"2026-12-01T00:00:00Z"}"#;
    let s: LinkStatus = serde_json::from_str(old).unwrap();
    assert_eq!((s.one_way_min_ms, s.one_way_max_ms), (0, 0));
    assert_eq!((s.sun_deg, s.blackout_ends), (None, None));
    assert_eq!(s.far_end(), "Mars");
    // Ten simulated minutes ahead at 60× is ten real seconds; a moment passed is zero.
    let ahead = s.sim_time + chrono::TimeDelta::minutes(10);
    assert_eq!(
        s.real_until(ahead, s.taken_at),
        std::time::Duration::from_secs(10)
    );
    assert_eq!(
        s.real_until(ahead, s.taken_at + chrono::TimeDelta::minutes(1)),
        std::time::Duration::ZERO
    );
}

#[test]
fn events_round_trip_as_tagged_json() {
    let e = Event::OutputDelta {
        id: ExecutionId(Uuid::nil()),
        text: "hi".into(),
    };
    let line = serde_json::to_string(&e).unwrap();
    assert_eq!(
        line,
        r#"{"type":"output_delta","id":"00000000-0000-0000-0000-000000000000","text":"hi"}"#
    );
    assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), e);
}

#[test]
fn priority_cycle_goes_up_first_and_visits_all() {
    let mut p = Priority::Normal;
    let mut seen = vec![];
    for _ in 0..5 {
        seen.push(p);
        p = p.cycle();
    }
    use Priority::*;
    assert_eq!(seen, [Normal, High, Critical, Background, Low]);
    assert_eq!(p, Normal);
}

#[test]
fn priority_names_match_serde_and_parse_back_in_any_case() {
    for p in Priority::ALL {
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            format!("\"{}\"", p.name())
        );
        assert_eq!(p.name().to_ascii_uppercase().parse::<Priority>(), Ok(p));
    }
    for (scope, name) in [
        (ConfirmScope::Once, "once"),
        (ConfirmScope::Session, "session"),
    ] {
        assert_eq!(scope.name(), name);
        assert_eq!(
            serde_json::to_string(&scope).unwrap(),
            format!("\"{name}\"")
        );
    }
    assert_eq!(
        "urgent".parse::<Priority>(),
        Err(
            "'urgent' is not a priority; use one of critical, high, normal, low, background"
                .to_string()
        )
    );
}

#[test]
fn titles_are_one_short_line() {
    assert_eq!(title_of("\n  hello\nworld", 80), "hello");
    assert_eq!(title_of("abcdef", 4), "abc…");
}
