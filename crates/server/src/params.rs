//! Query strings the way Docker reads them: repeated keys, and booleans where anything but
//! `""`, `0`, `no`, `false` and `none` is true.

use crate::error::ApiError;

#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(query: Option<&str>) -> Self {
        Self(
            form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The last value of `key`, if present and non-empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn bool(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| {
            !matches!(
                v.to_ascii_lowercase().as_str(),
                "0" | "no" | "false" | "none"
            )
        })
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {v:?}"))),
        }
    }
}

impl Params {
    /// Docker's `filters` query value: `{"name": ["a"], "dangling": ["true"]}` (the old
    /// `{"name": {"a": true}}` form too). Malformed filters are a 400, never ignored.
    pub fn filters(&self) -> Result<std::collections::BTreeMap<String, Vec<String>>, ApiError> {
        let Some(raw) = self.get("filters") else {
            return Ok(Default::default());
        };
        let value: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::bad_request(format!("invalid filters: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| ApiError::bad_request("invalid filters: expected a JSON object"))?;
        let mut out = std::collections::BTreeMap::new();
        for (k, v) in obj {
            let values: Vec<String> = match v {
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                serde_json::Value::Object(m) => m.keys().cloned().collect(),
                _ => return Err(ApiError::bad_request(format!("invalid filter {k:?}"))),
            };
            out.insert(k.clone(), values);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_follow_dockers_rule() {
        let p = Params::parse(Some("a=1&b=true&c=0&d=false&e=&f=no&g=yes"));
        assert!(p.bool("a") && p.bool("b") && p.bool("g"));
        assert!(!p.bool("c") && !p.bool("d") && !p.bool("e") && !p.bool("f") && !p.bool("zz"));
    }

    #[test]
    fn repeated_keys_and_ints() {
        let p = Params::parse(Some("t=a%3A1&t=b&n=5&bad=x"));
        assert_eq!(p.all("t"), vec!["a:1", "b"]);
        assert_eq!(p.int("n").unwrap(), Some(5));
        assert!(p.int("bad").is_err());
    }
}
