//! `calculator`: arithmetic and functions (`+ - * / ^`, `sin`, `sqrt`, `exp`, `ln`, `PI`, …).
//!
//! Evaluation is `exmex` (MIT OR Apache-2.0, maintained; `evalexpr` 12+ is AGPL and `meval`
//! is unmaintained). It has no loops, variables or user functions, so no expression can run
//! for long; on top of it the input is limited to [`MAX_CHARS`] characters and [`MAX_DEPTH`]
//! nested brackets before it is parsed, a result that is not a finite number (overflow,
//! division by zero) is an error, and a panic inside the evaluator is caught and reported.

use serde_json::json;

use super::{Capability, Tool, ToolCategory, ToolError, ToolOutput, str_arg};

/// Longest expression accepted, in characters.
pub const MAX_CHARS: usize = 512;
/// Deepest bracket nesting accepted.
pub const MAX_DEPTH: usize = 32;

/// See the module docs.
#[derive(Debug, Default, Clone, Copy)]
pub struct Calculator;

/// Evaluates one expression within the limits.
pub fn evaluate(expression: &str) -> Result<f64, ToolError> {
    let chars = expression.chars().count();
    if chars > MAX_CHARS {
        return Err(ToolError::BadArguments(format!(
            "the expression is {chars} characters long; the calculator takes at most {MAX_CHARS}"
        )));
    }
    let mut depth = 0usize;
    for c in expression.chars() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(ToolError::BadArguments(format!(
                        "the expression nests brackets deeper than {MAX_DEPTH} levels; simplify it"
                    )));
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if expression.trim().is_empty() {
        return Err(ToolError::BadArguments(
            "the expression is empty; write e.g. 2 * (3 + 4)".into(),
        ));
    }
    let text = expression.to_string();
    let result = std::panic::catch_unwind(move || exmex::eval_str::<f64>(&text))
        .map_err(|_| ToolError::Failed("the evaluator failed on this expression".into()))?;
    match result {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(v) => Err(ToolError::Failed(format!(
            "the result is {v}, not a finite number (an overflow or a division by zero)"
        ))),
        Err(e) => Err(ToolError::BadArguments(format!(
            "the expression could not be evaluated: {}",
            crate::sanitize::excerpt(&e.to_string(), crate::sanitize::EXCERPT_CHARS)
        ))),
    }
}

#[async_trait::async_trait]
impl Tool for Calculator {
    fn capability(&self) -> Capability {
        Capability {
            name: "calculator".into(),
            description: "Evaluates an arithmetic expression: + - * / ^, brackets, sqrt, exp, ln, \
                          sin, cos, tan, PI, E."
                .into(),
            category: ToolCategory::Computation,
            reversible: true,
            confirmation: false,
            schema: json!({
                "type": "object",
                "properties": {
                    "expression": {
                        "type": "string",
                        "description": "the expression, e.g. 2 * (3 + 4)",
                        "maxLength": MAX_CHARS,
                    }
                },
                "required": ["expression"],
                "additionalProperties": false,
            }),
        }
    }

    async fn invoke(&self, args: &serde_json::Value) -> Result<ToolOutput, ToolError> {
        let expression = str_arg(args, "expression");
        let value = evaluate(expression)?;
        Ok(ToolOutput::new(
            json!({ "value": value }),
            format!("{} = {value}", crate::sanitize::excerpt(expression, 60)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_and_functions() {
        assert_eq!(evaluate("2 * (3 + 4)").unwrap(), 14.0);
        assert!((evaluate("sqrt(16) + sin(0)").unwrap() - 4.0).abs() < 1e-12);
    }

    #[test]
    fn huge_deep_and_overflowing_input_is_an_error_not_a_panic() {
        let huge = "1+".repeat(MAX_CHARS) + "1";
        assert!(
            matches!(evaluate(&huge), Err(ToolError::BadArguments(m)) if m.contains("characters"))
        );
        let deep = "(".repeat(MAX_DEPTH + 1) + "1" + &")".repeat(MAX_DEPTH + 1);
        assert!(matches!(evaluate(&deep), Err(ToolError::BadArguments(m)) if m.contains("nests")));
        assert!(matches!(evaluate("10^400"), Err(ToolError::Failed(m)) if m.contains("finite")));
        assert!(matches!(evaluate("1/0"), Err(ToolError::Failed(_))));
        assert!(evaluate("((((").is_err());
        assert!(evaluate("").is_err());
        assert!(evaluate("2 +* x )").is_err());
    }
}
