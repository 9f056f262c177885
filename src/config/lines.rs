//! Where each key of a YAML config file is set: dotted key (`runtime.max_concurrent`, list
//! items as `model.mock.script[2].pattern`) → the line and column of its value. Errors use it
//! to name the line a value came from ([`super::LoadedConfig::origin`]) and the key a wrong
//! value belongs to. The file is read a second time as a bare tree of keys, which accepts any
//! value, so a file whose values do not fit the config still has its keys located.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// Line and column (1-based) of a key's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct At {
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
}

/// Dotted key → where its value is, for every key in `text`. Empty when `text` is not YAML
/// (its parse error is reported by the real parse).
pub fn key_lines(text: &str) -> BTreeMap<String, At> {
    let mut out = BTreeMap::new();
    if let Ok(root) = serde_saphyr::from_str::<Node>(text) {
        walk(&root, "", &mut out);
    }
    out
}

/// The deepest key whose value starts at `line` (at `column` when one does), for an error
/// the parser located there.
pub fn key_at(lines: &BTreeMap<String, At>, line: u64, column: u64) -> Option<&str> {
    let on_line = || lines.iter().filter(|(_, at)| at.line == line);
    on_line()
        .filter(|(_, at)| at.column == column)
        .max_by_key(|(key, _)| key.len())
        .or_else(|| on_line().max_by_key(|(key, _)| key.len()))
        .map(|(key, _)| key.as_str())
}

fn walk(node: &Node, path: &str, out: &mut BTreeMap<String, At>) {
    let record = |key: String, value: &Spanned<Node>, out: &mut BTreeMap<String, At>| {
        let at = At {
            line: value.referenced.line(),
            column: value.referenced.column(),
        };
        if at.line > 0 {
            out.insert(key.clone(), at);
        }
        walk(&value.value, &key, out);
    };
    match node {
        Node::Map(entries) => {
            for (key, value) in entries {
                let key = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                record(key, value, out);
            }
        }
        Node::Seq(items) => {
            for (i, value) in items.iter().enumerate() {
                record(format!("{path}[{i}]"), value, out);
            }
        }
        Node::Leaf => {}
    }
}

/// A YAML node reduced to its keys.
enum Node {
    Map(Vec<(String, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Leaf,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(Key(key)) = map.next_key::<Key>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_i128<E>(self, _: i128) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_u128<E>(self, _: u128) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_bytes<E>(self, _: &[u8]) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }

    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<Node, A::Error> {
        // A tagged value (`!tag x`): its content is not a key of the config.
        let (IgnoredAny, variant) = data.variant::<IgnoredAny>()?;
        serde::de::VariantAccess::newtype_variant::<IgnoredAny>(variant)?;
        Ok(Node::Leaf)
    }
}

/// A mapping key, whatever scalar spells it.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, v: &str) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }

    fn visit_unit<E>(self) -> Result<Key, E> {
        Ok(Key("~".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_and_list_item_is_located() {
        let text = "# comment\nmodel:\n  backend: mock\n  mock:\n    script:\n      - pattern: a\n        reply: b\nruntime: {max_concurrent: 3}\n";
        let lines = key_lines(text);
        assert_eq!(lines["model.backend"].line, 3);
        assert_eq!(lines["model.mock.script[0].pattern"].line, 6);
        assert_eq!(lines["model.mock.script[0].reply"].line, 7);
        assert_eq!(lines["runtime.max_concurrent"].line, 8);
        assert!(!lines.contains_key("model.model"));
        assert_eq!(
            key_at(&lines, 3, lines["model.backend"].column),
            Some("model.backend")
        );
    }

    #[test]
    fn values_of_the_wrong_type_still_have_their_keys_located() {
        let lines = key_lines("runtime:\n  max_concurrent: abc\nmodel:\n  model: [1]\n");
        assert_eq!(lines["runtime.max_concurrent"].line, 2);
        assert_eq!(lines["model.model"].line, 4);
    }

    #[test]
    fn text_that_is_not_yaml_locates_nothing() {
        assert!(key_lines("model: \"open\n").is_empty());
    }
}
