//! What a caller asks of a benchmark run before the configuration fills in the rest: the
//! console's `b` and `:bench`, and `veyra bench --tui`.

use super::framework::{Difficulty, FamilyId};

/// What `b` or `:bench` asks for; `None` fields take `bench:` from the configuration.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct BenchRequest {
    /// Families, sorted.
    pub families: Option<Vec<FamilyId>>,
    /// Tasks per family.
    pub count: Option<u32>,
    /// Difficulty.
    pub difficulty: Option<Difficulty>,
    /// Generator seed (`veyra bench --tui --seed S`).
    pub seed: Option<u64>,
    /// Times each task runs (`veyra bench --tui --epochs K`).
    pub epochs: Option<u32>,
}

impl BenchRequest {
    /// Parses `:bench [FAMILY[,FAMILY…]|all] [N] [DIFFICULTY]`; words may come in any order
    /// (a number is the count, a level the difficulty, anything else the families).
    pub fn parse(words: &[&str]) -> Result<BenchRequest, String> {
        let mut request = BenchRequest::default();
        for word in words {
            if let Ok(n) = word.parse::<u64>() {
                let range = crate::config::bench::RANGE_BENCH_COUNT;
                if request.count.is_some() || !range.contains(&n) {
                    return Err(format!(
                        ":bench takes one count from {} to {}, not '{word}'",
                        range.start(),
                        range.end()
                    ));
                }
                request.count = u32::try_from(n).ok();
            } else if let Ok(d) = word.parse::<Difficulty>() {
                request.difficulty = Some(d);
            } else if request.families.is_none() {
                request.families = Some(FamilyId::parse_list(word)?);
            } else {
                let range = crate::config::bench::RANGE_BENCH_COUNT;
                return Err(match FamilyId::parse_list(word) {
                    Ok(_) => format!(
                        "':bench {}' names families twice; list them in one word with commas, \
                         e.g. :bench msga,cplc 20 hard",
                        words.join(" ")
                    ),
                    Err(_) => format!(
                        "'{word}' is not a count ({} to {}), a difficulty ({}) or a family; \
                         use :bench FAMILY N DIFFICULTY, e.g. :bench msga 20 hard",
                        range.start(),
                        range.end(),
                        Difficulty::ALL.map(Difficulty::name).join(", ")
                    ),
                });
            }
        }
        Ok(request)
    }
}
