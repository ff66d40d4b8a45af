//! Natural ordering (`net2` before `net10`), as the docker CLI sorts `network ls` rows and
//! `port` lines (it uses `github.com/fvbommel/sortorder.NaturalLess`).

use std::cmp::Ordering;

/// Compares two strings with runs of digits compared as numbers; digits sort before other bytes,
/// and of two equal numbers the one with fewer leading zeros comes first.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < x.len() && j < y.len() {
        let (dx, dy) = (x[i].is_ascii_digit(), y[j].is_ascii_digit());
        if dx != dy {
            return if dx { Ordering::Less } else { Ordering::Greater };
        }
        if !dx {
            if x[i] != y[j] {
                return x[i].cmp(&y[j]);
            }
            i += 1;
            j += 1;
            continue;
        }
        while i < x.len() && x[i] == b'0' {
            i += 1;
        }
        while j < y.len() && y[j] == b'0' {
            j += 1;
        }
        let (nz_i, nz_j) = (i, j);
        while i < x.len() && x[i].is_ascii_digit() {
            i += 1;
        }
        while j < y.len() && y[j].is_ascii_digit() {
            j += 1;
        }
        let (nx, ny) = (&x[nz_i..i], &y[nz_j..j]);
        let by_len = nx.len().cmp(&ny.len());
        if by_len != Ordering::Equal {
            return by_len;
        }
        if nx != ny {
            return nx.cmp(ny);
        }
        if nz_i != nz_j {
            return nz_i.cmp(&nz_j);
        }
    }
    // Identical so far and one has ended: the longer sorts last.
    x.len().cmp(&y.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        let mut v = vec![
            "net10",
            "net2",
            "bridge",
            "net1",
            "host",
            "a01",
            "a1",
            "80/tcp -> x",
            "443/tcp -> x",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            [
                "80/tcp -> x",
                "443/tcp -> x",
                "a1",
                "a01",
                "bridge",
                "host",
                "net1",
                "net2",
                "net10"
            ]
        );
        assert_eq!(natural_cmp("a", "ab"), Ordering::Less);
        assert_eq!(natural_cmp("x", "x"), Ordering::Equal);
    }
}
