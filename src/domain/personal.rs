//! A personal field as the log gives it back: the value written, or the mark
//! that its person was erased and the value can never be read again.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What an erased person's field reads wherever an event is shown.
pub const ERASED: &str = "[erased]";

/// A personal field: known, or erased with its person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Personal<T> {
    /// The value as written.
    Known(T),
    /// The person was erased: the value is gone for good.
    Erased,
}

impl<T> Personal<T> {
    /// The value, unless it was erased.
    pub fn known(&self) -> Option<&T> {
        match self {
            Self::Known(value) => Some(value),
            Self::Erased => None,
        }
    }
}

impl<T> From<T> for Personal<T> {
    fn from(value: T) -> Self {
        Self::Known(value)
    }
}

impl<T: Serialize> Serialize for Personal<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Known(value) => value.serialize(s),
            Self::Erased => s.serialize_str(ERASED),
        }
    }
}

/// The stored mark of an erased field: exactly the string [`ERASED`].
struct ErasedMark;

impl<'de> Deserialize<'de> for ErasedMark {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        if text == ERASED {
            Ok(Self)
        } else {
            Err(serde::de::Error::custom("not the erased mark"))
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Personal<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr<T> {
            Erased(ErasedMark),
            Known(T),
        }
        Ok(match Repr::deserialize(d)? {
            Repr::Erased(ErasedMark) => Self::Erased,
            Repr::Known(value) => Self::Known(value),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_known_value_reads_as_itself_and_the_mark_as_erased() {
        let known: Personal<String> = serde_json::from_value(json!("ada")).unwrap();
        assert_eq!(known, Personal::Known("ada".to_owned()));
        let erased: Personal<String> = serde_json::from_value(json!(ERASED)).unwrap();
        assert_eq!(erased, Personal::Erased);
        assert_eq!(serde_json::to_value(&erased).unwrap(), json!(ERASED));
        assert_eq!(serde_json::to_value(&known).unwrap(), json!("ada"));
        let absent: Option<Personal<String>> = serde_json::from_value(json!(null)).unwrap();
        assert_eq!(absent, None);
    }

    #[test]
    fn a_value_of_the_wrong_shape_is_refused() {
        assert!(serde_json::from_value::<Personal<String>>(json!(7)).is_err());
    }
}
