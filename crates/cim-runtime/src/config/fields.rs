//! The field names of a `#[derive(Deserialize)]` struct, read from the list
//! serde's derive hands to `deserialize_struct`. Used to tell which
//! `CIM_<SECTION>_<KEY>` variables name real keys, without a second list
//! of keys that could drift from the structs.

use serde::de::{self, Deserialize, Visitor};

#[derive(Debug)]
struct Probe(Option<&'static [&'static str]>);

#[derive(Debug)]
struct Found;

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field probe")
    }
}

impl std::error::Error for Found {}

impl de::Error for Found {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Found
    }
}

impl<'de> de::Deserializer<'de> for &mut Probe {
    type Error = Found;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
        Err(Found)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Found> {
        self.0 = Some(fields);
        Err(Found)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit unit_struct
        newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// The keys of the struct `T` deserializes from; empty if `T` is not a struct.
pub(crate) fn field_names<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut probe = Probe(None);
    let _ = T::deserialize(&mut probe);
    probe.0.unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_field_names() {
        let fields = field_names::<crate::config::NatsConfig>();
        assert!(fields.contains(&"url") && fields.contains(&"creds_file"), "{fields:?}");
        assert!(field_names::<cim_store::StoreConfig>().contains(&"namespace"));
        assert!(field_names::<String>().is_empty());
    }
}
