//! `--filter key=value` flags into the Engine API's filter map (`{"status": ["exited"]}`), as
//! Docker's `opts.FilterOpt` parses them.

use std::collections::BTreeMap;

/// `-f key=value` filters into the Engine API filter map.
pub fn parse_filters(items: &[String]) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in items {
        let Some((k, v)) = f.split_once('=') else {
            return Err("bad format of filter (expected name=value)".to_string());
        };
        let k = k.trim().to_lowercase();
        let v = v.trim().to_string();
        if k.is_empty() {
            return Err("bad format of filter (expected name=value)".to_string());
        }
        out.entry(k).or_default().push(v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let f = parse_filters(&["status=exited".into(), "name=a".into(), "status=created".into()]).unwrap();
        assert_eq!(f["status"], vec!["exited", "created"]);
        assert_eq!(f["name"], vec!["a"]);
        assert!(parse_filters(&["nope".into()]).is_err());
        let f = parse_filters(&["label=a=b".into()]).unwrap();
        assert_eq!(f["label"], vec!["a=b"]);
    }
}
