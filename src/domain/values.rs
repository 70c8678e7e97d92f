//! Value types that cannot hold an invalid value: parse once at the edge.

use super::DomainError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A normalised and checked email address: trimmed, NFKC, lower-cased, and its
/// domain in IDNA ASCII form (`bücher.example` is `xn--bcher-kva.example`), so
/// look-alikes that differ only in width, compatibility form, case or the
/// spelling of their domain are one address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Normalises and checks an email address.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let bad = |why: &str| DomainError::invalid("email", format!("not a valid address ({why})"));
        let raw = raw.trim();
        if raw.chars().any(is_invisible) {
            return Err(bad("invisible or control character"));
        }
        let nfkc = icu_normalizer::ComposingNormalizerBorrowed::new_nfkc();
        let email = nfkc.normalize(&raw.to_lowercase()).into_owned();
        if email.is_empty() || email.chars().count() > 254 {
            return Err(bad("length"));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(bad("missing @"));
        };
        if local.is_empty() || local.len() > 64 || domain.contains('@') {
            return Err(bad("local part"));
        }
        if local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\\\"".contains(c))
        {
            return Err(bad("forbidden character"));
        }
        let domain = idna::domain_to_ascii_cow(domain.as_bytes(), idna::AsciiDenyList::STD3)
            .map_err(|_| bad("domain"))?;
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(bad("domain"));
        }
        let email = format!("{local}@{domain}");
        if email.len() > 254 {
            return Err(bad("length"));
        }
        Ok(Self(email))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a character is invisible or a control: a control or format
/// character (zero-width spaces and joiners, bidi controls, the soft hyphen),
/// a line or paragraph separator, or any other default-ignorable code point
/// (variation selectors, Hangul fillers, tags). Such characters let two names
/// or emails look alike while they differ. Unassigned code points are not
/// refused: Unicode may assign them (new emoji) before this data knows it.
pub fn is_invisible(c: char) -> bool {
    use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory};
    use icu_properties::{CodePointMapData, CodePointSetData};
    if CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c) {
        return true;
    }
    matches!(
        CodePointMapData::<GeneralCategory>::new().get(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// Parses a free-text display name: trimmed, 1 to 200 characters, no
/// invisible or control characters.
fn parse_name(field: &'static str, raw: &str) -> Result<String, DomainError> {
    let name = raw.trim();
    let len = name.chars().count();
    if len == 0 {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if len > 200 {
        return Err(DomainError::invalid(field, "at most 200 characters"));
    }
    if name.chars().any(is_invisible) {
        return Err(DomainError::invalid(
            field,
            "must not contain invisible or control characters",
        ));
    }
    if name == super::personal::ERASED {
        // The mark of an erased field: a name reading it would look erased.
        return Err(DomainError::invalid(field, "is reserved"));
    }
    Ok(name.to_owned())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $ty(String);

        impl $ty {
            /// Trims and checks the name.
            pub fn parse(raw: &str) -> Result<Self, DomainError> {
                parse_name($field, raw).map(Self)
            }

            /// The name.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// A person's display name.
    UserName,
    "name"
);
name_type!(
    /// An organisation's display name.
    OrgName,
    "name"
);
name_type!(
    /// An API key's label.
    KeyName,
    "name"
);

/// An organisation slug: `^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    /// Checks the slug pattern.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let b = raw.as_bytes();
        let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        let inner = |c: &u8| edge(c) || *c == b'-';
        let ok = (3..=40).contains(&b.len())
            && b.first().is_some_and(edge)
            && b.last().is_some_and(edge)
            && b.iter().all(inner);
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::invalid(
                "slug",
                "must match ^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$",
            ))
        }
    }

    /// The slug.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A member's role in an organisation. Ordered: `Member < Admin < Owner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the org and its member list.
    Member,
    /// Manages the org, its members and keys; cannot grant `owner`.
    Admin,
    /// Everything an admin can, and grants `owner`.
    Owner,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    /// Parses a stored or requested role name.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw {
            "member" => Ok(Self::Member),
            "admin" => Ok(Self::Admin),
            "owner" => Ok(Self::Owner),
            _ => Err(DomainError::invalid("role", "one of owner, admin, member")),
        }
    }
}

/// Scope that grants everything, everywhere.
pub const SCOPE_ADMIN: &str = "vouch:admin";
/// Scope that makes an org key act as an admin of its org.
pub const SCOPE_ORG_ADMIN: &str = "vouch:org:admin";
/// Scope that allows `POST /v1/keys/verify`.
pub const SCOPE_KEYS_VERIFY: &str = "vouch:keys:verify";
/// Scope that allows reading the org's events and exports.
pub const SCOPE_AUDIT_READ: &str = "vouch:audit:read";
const RESERVED_SCOPES: [&str; 4] = [
    SCOPE_ADMIN,
    SCOPE_ORG_ADMIN,
    SCOPE_KEYS_VERIFY,
    SCOPE_AUDIT_READ,
];

/// The most scopes one key may hold.
pub const MAX_SCOPES: usize = 64;

/// A checked, de-duplicated list of API-key scopes, in the order given.
///
/// Scopes match `^[a-z0-9:._-]{1,64}$`. The `vouch:` namespace is vouch's own:
/// only the reserved scopes may be used in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// Checks and de-duplicates scopes.
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, DomainError> {
        if raw.len() > MAX_SCOPES {
            return Err(DomainError::invalid(
                "scopes",
                format!("at most {MAX_SCOPES} scopes"),
            ));
        }
        let mut out: Vec<String> = Vec::with_capacity(raw.len());
        for s in raw {
            let s = s.as_ref();
            let ok = (1..=64).contains(&s.len())
                && s.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b":._-".contains(&c));
            if !ok {
                return Err(DomainError::invalid(
                    "scopes",
                    format!("{s:?} does not match ^[a-z0-9:._-]{{1,64}}$"),
                ));
            }
            if s.starts_with("vouch:") && !RESERVED_SCOPES.contains(&s) {
                return Err(DomainError::invalid(
                    "scopes",
                    format!("{s:?} is in the reserved vouch: namespace but is not a vouch scope"),
                ));
            }
            if !out.iter().any(|o| o == s) {
                out.push(s.to_owned());
            }
        }
        Ok(Self(out))
    }

    /// Whether the list holds `scope`.
    pub fn has(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    /// The scopes.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalised() {
        let e = Email::parse("  Ada.Lovelace@Example.ORG ").unwrap();
        assert_eq!(e.as_str(), "ada.lovelace@example.org");
    }

    #[test]
    fn look_alike_emails_are_one_address() {
        let plain = Email::parse("ada@example.org").unwrap();
        for alike in [
            "ＡＤＡ@ｅｘａｍｐｌｅ.ｏｒｇ", // full-width forms (NFKC)
            "ADA@EXAMPLE.ORG",
            "ada@example\u{3002}org", // ideographic full stop (IDNA)
        ] {
            assert_eq!(Email::parse(alike).unwrap(), plain, "{alike:?}");
        }
        // ﬁ (a ligature) is fi once normalised.
        assert_eq!(
            Email::parse("\u{fb01}@example.org").unwrap().as_str(),
            "fi@example.org"
        );
        // A Unicode domain is stored in its ASCII form.
        assert_eq!(
            Email::parse("ada@Bücher.example").unwrap().as_str(),
            "ada@xn--bcher-kva.example"
        );
        assert_eq!(
            Email::parse("ada@xn--bcher-kva.example").unwrap(),
            Email::parse("ada@bücher.example").unwrap()
        );
    }

    #[test]
    fn invisible_characters_are_refused_in_emails_and_names() {
        for c in [
            '\u{200b}',  // zero-width space
            '\u{200c}',  // zero-width non-joiner
            '\u{200d}',  // zero-width joiner
            '\u{2060}',  // word joiner
            '\u{feff}',  // zero-width no-break space
            '\u{00ad}',  // soft hyphen
            '\u{202e}',  // right-to-left override
            '\u{2066}',  // left-to-right isolate
            '\u{200f}',  // right-to-left mark
            '\u{061c}',  // Arabic letter mark
            '\u{115f}',  // Hangul choseong filler
            '\u{3164}',  // Hangul filler
            '\u{fe0f}',  // variation selector 16
            '\u{e0041}', // tag latin capital A
            '\u{2028}',  // line separator
            '\u{0007}',  // bell
            '\u{0085}',  // next line (a control)
        ] {
            assert!(is_invisible(c), "{c:?}");
            let email = format!("a{c}da@example.org");
            assert!(Email::parse(&email).is_err(), "{email:?} accepted");
            let domain = format!("ada@exa{c}mple.org");
            assert!(Email::parse(&domain).is_err(), "{domain:?} accepted");
            let name = format!("Ada{c} Lovelace");
            assert!(UserName::parse(&name).is_err(), "{name:?} accepted");
            assert!(OrgName::parse(&name).is_err(), "{name:?} accepted");
            assert!(KeyName::parse(&name).is_err(), "{name:?} accepted");
        }
        for visible in [
            "Ada Lovelace",
            "Zoë",
            "東京 オフィス",
            "Ω-team",
            "café ☕",
            "a\u{a0}b",
        ] {
            assert!(UserName::parse(visible).is_ok(), "{visible:?} refused");
        }
    }

    #[test]
    fn bad_emails_are_refused() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.org",
            "ada@example",
            "a b@example.org",
            "ada@@example.org",
            "ada@-x.org",
            "ada@example..org",
            "<a>@example.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn slugs_follow_the_pattern() {
        for good in ["abc", "a-b", "acme-corp-42", &"a".repeat(40)] {
            assert!(Slug::parse(good).is_ok(), "{good:?} refused");
        }
        for bad in ["ab", "-ab", "ab-", "Abc", "a_b", &"a".repeat(41), "äbc"] {
            assert!(Slug::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn scopes_are_checked_and_deduplicated() {
        let s = Scopes::parse(&["read", "write:all", "read", SCOPE_KEYS_VERIFY]).unwrap();
        assert_eq!(s.as_slice(), ["read", "write:all", SCOPE_KEYS_VERIFY]);
        assert!(Scopes::parse(&["Read"]).is_err());
        assert!(Scopes::parse(&[""]).is_err());
        assert!(Scopes::parse(&["x".repeat(65)]).is_err());
        assert!(Scopes::parse(&["vouch:superuser"]).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(OrgName::parse("  Acme ").unwrap().as_str(), "Acme");
        assert!(OrgName::parse("   ").is_err());
        assert!(UserName::parse(&"é".repeat(201)).is_err());
        assert!(KeyName::parse("a\u{0}b").is_err());
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Member);
        assert_eq!(Role::parse("admin").unwrap(), Role::Admin);
        assert!(Role::parse("root").is_err());
    }
}
