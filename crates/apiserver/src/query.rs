//! Query-string parameters, percent-decoded.

use std::collections::HashMap;

use apimachinery::ApiError;

#[derive(Debug, Clone, Default)]
pub struct Query(HashMap<String, String>);

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Upstream's query-string boolean.
pub fn truthy(value: &str) -> bool {
    value != "0" && !value.eq_ignore_ascii_case("false")
}

impl Query {
    pub fn parse(raw: &str) -> Query {
        let mut map = HashMap::new();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            map.insert(percent_decode(k), percent_decode(v));
        }
        Query(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A parameter, or "" when absent.
    pub fn str(&self, key: &str) -> &str {
        self.get(key).unwrap_or("")
    }

    /// A copy with one parameter replaced.
    pub fn with(&self, key: &str, value: &str) -> Query {
        let mut copy = self.clone();
        copy.0.insert(key.to_string(), value.to_string());
        copy
    }

    /// A boolean parameter as upstream reads one: present and neither "0"
    /// nor (any case of) "false" means true, so `watch=True` is a watch.
    pub fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(truthy)
    }

    /// An integer parameter; a malformed one is a 400.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid value for {key}: {v:?} is not an integer"))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_percent_decoded() {
        let q = Query::parse("labelSelector=app%3Dweb%2Ctier+in+%28a%29&limit=5&watch");
        assert_eq!(q.str("labelSelector"), "app=web,tier in (a)");
        assert_eq!(q.int("limit").unwrap(), Some(5));
        assert!(q.flag("watch"));
        for (v, want) in [
            ("True", true),
            ("1", true),
            ("", true),
            ("0", false),
            ("FALSE", false),
        ] {
            assert_eq!(
                Query::parse(&format!("watch={v}")).flag("watch"),
                want,
                "{v}"
            );
        }
        assert!(!Query::parse("").flag("watch"));
        assert!(Query::parse("limit=x").int("limit").is_err());
        assert_eq!(Query::parse("a=%zz%4").str("a"), "%zz%4");
    }
}
