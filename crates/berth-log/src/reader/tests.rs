use super::*;
use crate::JsonLog;
use std::io::Write;

fn line(stream: &str, log: &str, time: &str) -> String {
    let mut out = Vec::new();
    crate::entry::encode(&mut out, log, stream, time).unwrap();
    String::from_utf8(out).unwrap()
}

fn t(secs: u64) -> String {
    format!("1970-01-01T00:{:02}:{:02}.5Z", secs / 60, secs % 60)
}

fn logs(entries: &[LogEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.log.as_str()).collect()
}

fn write_file(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

fn read_all(r: &mut LogReader) -> Vec<LogEntry> {
    let mut out = Vec::new();
    loop {
        let before = r.consumed();
        out.extend(r.read_new().unwrap());
        if r.consumed() == before {
            return out;
        }
    }
}

#[test]
fn round_trip_with_the_writer() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("c-json.log");
    let mut w = JsonLog::open(p.to_str().unwrap()).unwrap();
    w.write("stdout", b"one\ntwo\n").unwrap();
    w.write("stderr", b"oops\n").unwrap();
    w.write("stdout", b"no newline").unwrap();
    let mut r = LogReader::open(&p, Filter::all()).unwrap();
    let got = read_all(&mut r);
    assert_eq!(logs(&got), ["one\n", "two\n", "oops\n", "no newline"]);
    assert_eq!(got[2].stream, Stream::Stderr);
    assert!(got.iter().all(|e| e.unix_time().is_some()));
}

#[test]
fn stream_selection() {
    let d = tempfile::tempdir().unwrap();
    let body = [
        line("stdout", "o1\n", &t(1)),
        line("stderr", "e1\n", &t(2)),
        line("stdout", "o2\n", &t(3)),
    ]
    .concat();
    let p = write_file(d.path(), "l", &body);
    let only = |stdout, stderr| {
        let f = Filter {
            stdout,
            stderr,
            ..Filter::all()
        };
        logs(&read_all(&mut LogReader::open(&p, f).unwrap()))
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(only(true, false), ["o1\n", "o2\n"]);
    assert_eq!(only(false, true), ["e1\n"]);
    assert_eq!(only(true, true), ["o1\n", "e1\n", "o2\n"]);
}

#[test]
fn since_and_until() {
    let d = tempfile::tempdir().unwrap();
    let body: String = (0..10).map(|i| line("stdout", &format!("{i}\n"), &t(i))).collect();
    let p = write_file(d.path(), "l", &body);
    let f = Filter {
        since: Some(3.5),
        until: Some(6.5),
        ..Filter::all()
    };
    // since is inclusive, until exclusive (entries are at i + 0.5 s).
    assert_eq!(
        logs(&read_all(&mut LogReader::open(&p, f).unwrap())),
        ["3\n", "4\n", "5\n"]
    );
    let mut r = LogReader::open(&p, f).unwrap();
    assert_eq!(logs(&r.tail(2).unwrap()), ["4\n", "5\n"]);
}

#[test]
fn malformed_lines_are_skipped() {
    let d = tempfile::tempdir().unwrap();
    let body = [
        line("stdout", "a\n", &t(1)),
        "not json\n".to_string(),
        "\n".to_string(),
        "{\"log\":\"x\",\"stream\":\"stdin\",\"time\":\"t\"}\n".to_string(),
        "{\"log\":\"cut".to_string() + "\n",
        line("stdout", "b\n", &t(2)),
    ]
    .concat();
    let p = write_file(d.path(), "l", &body);
    assert_eq!(
        logs(&read_all(&mut LogReader::open(&p, Filter::all()).unwrap())),
        ["a\n", "b\n"]
    );
    assert_eq!(
        logs(&LogReader::open(&p, Filter::all()).unwrap().tail(5).unwrap()),
        ["a\n", "b\n"]
    );
}

#[test]
fn partial_lines_wait_for_their_newline() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("l");
    let full = line("stdout", "hello\n", &t(1));
    let (head, rest) = full.split_at(10);
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(line("stdout", "first\n", &t(0)).as_bytes()).unwrap();
    f.write_all(head.as_bytes()).unwrap();
    let mut r = LogReader::open(&p, Filter::all()).unwrap();
    assert_eq!(logs(&r.read_new().unwrap()), ["first\n"]);
    let at = r.consumed();
    assert!(r.read_new().unwrap().is_empty());
    assert_eq!(r.consumed(), at, "a partial line is not consumed");
    f.write_all(rest.as_bytes()).unwrap();
    assert_eq!(logs(&r.read_new().unwrap()), ["hello\n"]);
    assert!(r.consumed() > at);
    assert!(r.read_new().unwrap().is_empty());
}

#[test]
fn tail_skips_the_partial_line_and_follow_continues_after_it() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("l");
    let mut f = std::fs::File::create(&p).unwrap();
    let full = line("stdout", "3\n", &t(3));
    let (head, rest) = full.split_at(7);
    for i in 0..3 {
        f.write_all(line("stdout", &format!("{i}\n"), &t(i)).as_bytes())
            .unwrap();
    }
    f.write_all(head.as_bytes()).unwrap();
    let mut r = LogReader::open(&p, Filter::all()).unwrap();
    assert_eq!(logs(&r.tail(2).unwrap()), ["1\n", "2\n"]);
    assert!(r.read_new().unwrap().is_empty());
    f.write_all(rest.as_bytes()).unwrap();
    f.write_all(line("stdout", "4\n", &t(4)).as_bytes()).unwrap();
    assert_eq!(logs(&read_all(&mut r)), ["3\n", "4\n"]);
}

#[test]
fn tail_zero_and_tail_beyond_the_start() {
    let d = tempfile::tempdir().unwrap();
    let body: String = (0..3).map(|i| line("stdout", &format!("{i}\n"), &t(i))).collect();
    let p = write_file(d.path(), "l", &body);
    let mut r = LogReader::open(&p, Filter::all()).unwrap();
    assert!(r.tail(0).unwrap().is_empty());
    assert!(r.read_new().unwrap().is_empty(), "tail moves the cursor to the end");
    let mut r = LogReader::open(&p, Filter::all()).unwrap();
    assert_eq!(logs(&r.tail(100).unwrap()), ["0\n", "1\n", "2\n"]);
    let empty = write_file(d.path(), "empty", "");
    assert!(LogReader::open(&empty, Filter::all())
        .unwrap()
        .tail(5)
        .unwrap()
        .is_empty());
}

#[test]
fn tail_across_a_large_file() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("l");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    // ~6 MB, lines of varying length (some longer than a read chunk) so lines straddle chunk borders.
    let n: u64 = 50_000;
    for i in 0..n {
        let stream = if i % 3 == 0 { "stderr" } else { "stdout" };
        let pad = if i % 7919 == 0 { 100_000 } else { (i % 97) as usize };
        let log = format!("{i} {}\n", "x".repeat(pad));
        f.write_all(line(stream, &log, &t(i % 3600)).as_bytes()).unwrap();
    }
    f.into_inner().unwrap().sync_all().unwrap();
    let mut r = LogReader::open(&p, Filter::all()).unwrap();
    let got = r.tail(1000).unwrap();
    assert_eq!(got.len(), 1000);
    let first: u64 = got[0].log.split(' ').next().unwrap().parse().unwrap();
    let last: u64 = got[999].log.split(' ').next().unwrap().parse().unwrap();
    assert_eq!((first, last), (n - 1000, n - 1));
    assert_eq!(
        got[1].log.len(),
        format!("{} {}\n", first + 1, "x".repeat(((first + 1) % 97) as usize)).len()
    );
    // Only stderr: every third line.
    let f = Filter {
        stdout: false,
        ..Filter::all()
    };
    let got = LogReader::open(&p, f).unwrap().tail(5).unwrap();
    let nums: Vec<u64> = got
        .iter()
        .map(|e| e.log.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(nums, [49_986, 49_989, 49_992, 49_995, 49_998]);
    // Reading forward in steps yields every line once.
    assert_eq!(
        read_all(&mut LogReader::open(&p, Filter::all()).unwrap()).len(),
        n as usize
    );
}

#[test]
fn several_files_read_oldest_first() {
    let d = tempfile::tempdir().unwrap();
    let old = write_file(
        d.path(),
        "l.1",
        &(line("stdout", "a\n", &t(1)) + &line("stdout", "b\n", &t(2))),
    );
    let live = write_file(d.path(), "l", &line("stdout", "c\n", &t(3)));
    let files = vec![d.path().join("l.2-gone"), old, live];
    let mut r = LogReader::open_files(files.clone(), Filter::all()).unwrap();
    assert_eq!(logs(&read_all(&mut r)), ["a\n", "b\n", "c\n"]);
    let mut r = LogReader::open_files(files, Filter::all()).unwrap();
    assert_eq!(logs(&r.tail(2).unwrap()), ["b\n", "c\n"]);
}

#[test]
fn missing_log_is_not_found() {
    let d = tempfile::tempdir().unwrap();
    let e = LogReader::open(d.path().join("nope"), Filter::all()).unwrap_err();
    assert!(e.is_not_found());
    assert!(e.to_string().contains("nope"));
    assert!(LogReader::open_files(Vec::new(), Filter::all()).is_err());
}
