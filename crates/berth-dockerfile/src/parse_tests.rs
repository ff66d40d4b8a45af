//! Parser tests, written from the Dockerfile reference.

use super::*;
use crate::ast::ast_json;
use crate::error::ParseErrorKind;
use serde_json::{json, Value};

fn ast(src: &str) -> Value {
    match parse(src) {
        Ok(df) => ast_json(&df),
        Err(e) => panic!("parse failed for {src:?}: {e}"),
    }
}

/// The single instruction after a leading `FROM x` line.
fn second(src: &str) -> Value {
    ast(&format!("FROM x\n{src}"))[1].clone()
}

fn err(src: &str) -> ParseError {
    match parse(src) {
        Ok(df) => panic!("expected error for {src:?}, got {:?}", ast_json(&df)),
        Err(e) => e,
    }
}

fn obj(cmd: &str, flags: &[&str], args: Value, json_form: bool, line: usize) -> Value {
    json!({"cmd": cmd, "flags": flags, "args": args, "json": json_form, "heredocs": [], "line": line})
}

#[test]
fn instructions_table() {
    let cases: &[(&str, Value)] = &[
        ("FROM alpine", obj("from", &[], json!(["alpine"]), false, 1)),
        (
            "from --platform=linux/amd64 alpine:3 AS build",
            obj(
                "from",
                &["--platform=linux/amd64"],
                json!(["alpine:3", "AS", "build"]),
                false,
                1,
            ),
        ),
        (
            "FROM img as Base",
            obj("from", &[], json!(["img", "as", "Base"]), false, 1),
        ),
        ("RUN echo hi && ls", obj("run", &[], json!(["echo hi && ls"]), false, 1)),
        (
            "run [\"echo\", \"hi\"]",
            obj("run", &[], json!(["echo", "hi"]), true, 1),
        ),
        (
            "RUN --mount=type=cache,target=/root/.cache --network=none --security=insecure make",
            obj(
                "run",
                &[
                    "--mount=type=cache,target=/root/.cache",
                    "--network=none",
                    "--security=insecure",
                ],
                json!(["make"]),
                false,
                1,
            ),
        ),
        (
            "RUN --mount=type=bind,source=a --mount=type=tmpfs,target=/t true",
            obj(
                "run",
                &["--mount=type=bind,source=a", "--mount=type=tmpfs,target=/t"],
                json!(["true"]),
                false,
                1,
            ),
        ),
        (
            "RUN [\"c:\\windows\\system32\\tasklist.exe\"]",
            obj(
                "run",
                &[],
                json!(["[\"c:\\windows\\system32\\tasklist.exe\"]"]),
                false,
                1,
            ),
        ),
        (
            "RUN [ \"a\", 'b' ]",
            obj("run", &[], json!(["[ \"a\", 'b' ]"]), false, 1),
        ),
        (
            "RUN [\"a\"] trailing",
            obj("run", &[], json!(["[\"a\"] trailing"]), false, 1),
        ),
        ("RUN []", obj("run", &[], json!([]), true, 1)),
        (
            "CMD [\"param1\",\"param2\"]",
            obj("cmd", &[], json!(["param1", "param2"]), true, 1),
        ),
        (
            "CMD command param1 param2",
            obj("cmd", &[], json!(["command param1 param2"]), false, 1),
        ),
        (
            "ENTRYPOINT [\"/bin/bash\", \"-c\", \"echo hello\"]",
            obj("entrypoint", &[], json!(["/bin/bash", "-c", "echo hello"]), true, 1),
        ),
        (
            "ENTRYPOINT exec top -b",
            obj("entrypoint", &[], json!(["exec top -b"]), false, 1),
        ),
        (
            "LABEL \"com.example.vendor\"=\"ACME Incorporated\" version=1.0",
            obj(
                "label",
                &[],
                json!(["\"com.example.vendor\"", "\"ACME Incorporated\"", "version", "1.0"]),
                false,
                1,
            ),
        ),
        (
            "EXPOSE 80/tcp  80/udp 443",
            obj("expose", &[], json!(["80/tcp", "80/udp", "443"]), false, 1),
        ),
        (
            "ENV MY_NAME=\"John Doe\" MY_DOG=Rex\\ The\\ Dog",
            obj(
                "env",
                &[],
                json!(["MY_NAME", "\"John Doe\"", "MY_DOG", "Rex\\ The\\ Dog"]),
                false,
                1,
            ),
        ),
        (
            "ADD --chown=55:mygroup --chmod=644 files* /somedir/",
            obj(
                "add",
                &["--chown=55:mygroup", "--chmod=644"],
                json!(["files*", "/somedir/"]),
                false,
                1,
            ),
        ),
        (
            "ADD --keep-git-dir=true --checksum=sha256:abc --link --exclude=*.md https://x/y.tar /d",
            obj(
                "add",
                &[
                    "--keep-git-dir=true",
                    "--checksum=sha256:abc",
                    "--link",
                    "--exclude=*.md",
                ],
                json!(["https://x/y.tar", "/d"]),
                false,
                1,
            ),
        ),
        (
            "ADD [\"my file\", \"/dest dir/\"]",
            obj("add", &[], json!(["my file", "/dest dir/"]), true, 1),
        ),
        (
            "COPY --from=build --chown=bin --chmod=755 --link --parents --exclude=*.txt a b /dst/",
            obj(
                "copy",
                &[
                    "--from=build",
                    "--chown=bin",
                    "--chmod=755",
                    "--link",
                    "--parents",
                    "--exclude=*.txt",
                ],
                json!(["a", "b", "/dst/"]),
                false,
                1,
            ),
        ),
        (
            "COPY [\"a b\", \"/c\"]",
            obj("copy", &[], json!(["a b", "/c"]), true, 1),
        ),
        ("VOLUME [\"/data\"]", obj("volume", &[], json!(["/data"]), true, 1)),
        (
            "VOLUME /var/log /var/db",
            obj("volume", &[], json!(["/var/log", "/var/db"]), false, 1),
        ),
        (
            "USER patrick:staff",
            obj("user", &[], json!(["patrick:staff"]), false, 1),
        ),
        (
            "WORKDIR /path/to/my workdir",
            obj("workdir", &[], json!(["/path/to/my workdir"]), false, 1),
        ),
        (
            "ARG user1=someuser",
            obj("arg", &[], json!(["user1", "someuser"]), false, 1),
        ),
        (
            "STOPSIGNAL SIGKILL",
            obj("stopsignal", &[], json!(["SIGKILL"]), false, 1),
        ),
        (
            "SHELL [\"powershell\", \"-command\"]",
            obj("shell", &[], json!(["powershell", "-command"]), true, 1),
        ),
        (
            "MAINTAINER Sven <sven@example.org>",
            obj("maintainer", &[], json!(["Sven <sven@example.org>"]), false, 1),
        ),
        (
            "  RUN   echo   spaced  ",
            obj("run", &[], json!(["echo   spaced"]), false, 1),
        ),
    ];
    for (src, want) in cases {
        assert_eq!(&ast(src)[0], want, "{src}");
    }
}

#[test]
fn every_object_has_all_keys() {
    let v = ast("FROM a\nONBUILD RUN x\nENV a b\nHEALTHCHECK NONE\nRUN <<E\nE\n");
    for o in v.as_array().unwrap() {
        for k in ["cmd", "flags", "args", "json", "heredocs", "line"] {
            assert!(o.get(k).is_some(), "{k} missing in {o}");
        }
    }
}

#[test]
fn arg_without_value_is_null() {
    assert_eq!(second("ARG foo bar=baz")["args"], json!(["foo", null, "bar", "baz"]));
    assert_eq!(second("ARG a=\"x y\" b=")["args"], json!(["a", "\"x y\"", "b", ""]));
    // ARG may come before FROM.
    let v = ast("ARG VERSION=latest\nFROM busybox:$VERSION\nARG VERSION\n");
    assert_eq!(v[0]["args"], json!(["VERSION", "latest"]));
    assert_eq!(v[2]["args"], json!(["VERSION", null]));
}

#[test]
fn legacy_env_and_label() {
    let e = second("ENV MY_VAR my-value");
    assert_eq!(e["args"], json!(["MY_VAR", "my-value"]));
    assert_eq!(e["no_delim"], json!(true));
    // The reference's example: one variable ONE with value "TWO= THREE=world".
    assert_eq!(
        second("ENV ONE TWO= THREE=world")["args"],
        json!(["ONE", "TWO= THREE=world"])
    );
    let l = second("LABEL key some  value");
    assert_eq!(l["args"], json!(["key", "some  value"]));
    assert_eq!(l["no_delim"], json!(true));
    // The `=` form has no no_delim key.
    assert!(second("ENV a=b").get("no_delim").is_none());
    assert!(second("LABEL a=b").get("no_delim").is_none());
}

#[test]
fn env_word_rules() {
    assert_eq!(
        second("ENV a='x y' b=\"p\\\"q\" c=d\\ e")["args"],
        json!(["a", "'x y'", "b", "\"p\\\"q\"", "c", "d\\ e"])
    );
    assert_eq!(second("ENV a=1 \\\n    b=2")["args"], json!(["a", "1", "b", "2"]));
}

#[test]
fn env_errors() {
    let e = err("FROM x\nENV key\n");
    assert_eq!(e.line, 2);
    assert_eq!(e.kind, ParseErrorKind::MustHaveTwoArguments("ENV".into()));
    assert_eq!(
        e.to_string(),
        "dockerfile parse error on line 2: ENV must have two arguments"
    );
    assert_eq!(err("FROM x\n\nENV =foo").kind, ParseErrorKind::BlankName("ENV".into()));
    assert_eq!(err("FROM x\n\nENV =foo").line, 3);
    assert_eq!(
        err("FROM x\nENV").kind,
        ParseErrorKind::AtLeastOneArgument("ENV".into())
    );
    assert_eq!(err("FROM x\nENV a=b c").kind, ParseErrorKind::MissingEquals("c".into()));
    assert_eq!(
        err("FROM x\nLABEL key").kind,
        ParseErrorKind::MustHaveTwoArguments("LABEL".into())
    );
    assert_eq!(err("FROM x\nARG =v").kind, ParseErrorKind::BlankName("ARG".into()));
    assert_eq!(
        err("FROM x\nARG").kind,
        ParseErrorKind::AtLeastOneArgument("ARG".into())
    );
}

#[test]
fn continuations_join_as_docker() {
    let v = ast("FROM x\nRUN source $HOME/.bashrc && \\\necho $HOME\n");
    assert_eq!(v[1]["args"], json!(["source $HOME/.bashrc && echo $HOME"]));
    assert_eq!(v[1]["line"], json!(2));
    // Leading whitespace of continuation lines is kept; spaces after the escape are dropped.
    let v = ast("FROM x\nRUN echo \"\\\n     hello\\   \n     world\"\n");
    assert_eq!(v[1]["args"], json!(["echo \"     hello     world\""]));
}

#[test]
fn comments_and_blank_lines_inside_continuation_are_skipped() {
    let df = parse("FROM x\nRUN echo hello \\\n# comment\n  # indented comment\n\n   \nworld\nRUN next\n").unwrap();
    let v = ast_json(&df);
    assert_eq!(v[1]["args"], json!(["echo hello world"]));
    assert_eq!(v[2]["line"], json!(8));
    assert_eq!(df.instructions[1].end_line, 7);
    assert_eq!(df.warnings.len(), 1);
    assert_eq!(df.warnings[0].line, 2);
}

#[test]
fn comments_and_whitespace_lines() {
    let v = ast("# Comment\n   # indented comment\nFROM x\n    RUN echo 'we are running some # of cool things'\n");
    assert_eq!(v[0]["line"], json!(3));
    assert_eq!(v[1]["args"], json!(["echo 'we are running some # of cool things'"]));
    // CRLF line endings.
    let v = ast("FROM x\r\nRUN a \\\r\n b\r\n");
    assert_eq!(v[1]["args"], json!(["a  b"]));
}

#[test]
fn escape_directive_backtick() {
    let df = parse("# escape=`\n\nFROM microsoft/nanoserver\nCOPY testfile.txt c:\\\nRUN dir c:\\\n").unwrap();
    assert_eq!(df.directives.escape, '`');
    let v = ast_json(&df);
    assert_eq!(v[1]["args"], json!(["testfile.txt", "c:\\"]));
    assert_eq!(v[2]["args"], json!(["dir c:\\"]));
    assert_eq!(v[2]["line"], json!(5));
    // Backtick continues lines; ENV words use it as escape.
    let v = ast("# escape=`\nFROM x\nRUN a `\n  b\nENV k=a` b\n");
    assert_eq!(v[1]["args"], json!(["a   b"]));
    assert_eq!(v[2]["args"], json!(["k", "a` b"]));
}

#[test]
fn default_escape_joins_windows_paths() {
    // The reference's failing example: `c:\\` still continues the line.
    let v = ast("FROM microsoft/nanoserver\nCOPY testfile.txt c:\\\\\nRUN dir c:\\\n");
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[1]["args"], json!(["testfile.txt", "c:\\RUN", "dir", "c:"]));
}

#[test]
fn directives() {
    let df = parse("# syntax=docker/dockerfile:1\n#  CHECK = skip=all;error=true\n#\tescape=\\\nFROM x\n").unwrap();
    assert_eq!(df.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(df.directives.check.as_deref(), Some("skip=all;error=true"));
    assert_eq!(df.directives.escape, '\\');
    // After a comment, a blank line, an unknown directive or an instruction: just a comment.
    for src in [
        "# About my dockerfile\n# escape=`\nFROM x\nRUN a `\n",
        "\n# escape=`\nFROM x\nRUN a `\n",
        "# unknowndirective=value\n# escape=`\nFROM x\nRUN a `\n",
        "FROM x\n# escape=`\nRUN a `\n",
    ] {
        let df = parse(src).unwrap();
        assert_eq!(df.directives.escape, '\\', "{src}");
        assert_eq!(df.instructions.last().unwrap().words(), ["a `"], "{src}");
    }
    let e = err("# escape=\\\n# ESCAPE=`\nFROM x\n");
    assert_eq!(
        (e.line, e.kind),
        (2, ParseErrorKind::DuplicateDirective("escape".into()))
    );
    let e = err("# escape=x\nFROM x\n");
    assert_eq!((e.line, e.kind), (1, ParseErrorKind::InvalidEscape("x".into())));
}

#[test]
fn bom_is_ignored() {
    let df = parse("\u{feff}# escape=`\nFROM x\n").unwrap();
    assert_eq!(df.directives.escape, '`');
}

#[test]
fn no_instructions_is_an_error() {
    for src in [
        "",
        "\n\n",
        "# syntax=docker/dockerfile:1\n# just a comment\n",
        "   \n# c\n",
    ] {
        assert_eq!(err(src).kind, ParseErrorKind::NoInstructions, "{src:?}");
    }
    assert_eq!(
        err("").to_string(),
        "dockerfile parse error on line 1: file with no instructions"
    );
}

#[test]
fn unknown_instruction_names_the_line() {
    let e = err("FROM x\n\n# c\nFOO bar\n");
    assert_eq!(
        (e.line, e.kind.clone()),
        (4, ParseErrorKind::UnknownInstruction("FOO".into()))
    );
    assert_eq!(
        e.to_string(),
        "dockerfile parse error on line 4: unknown instruction: FOO"
    );
}

#[test]
fn argument_errors() {
    let cases: &[(&str, ParseErrorKind)] = &[
        ("FROM", ParseErrorKind::AtLeastOneArgument("FROM".into())),
        ("FROM a b", ParseErrorKind::FromArguments),
        ("FROM a FOR b", ParseErrorKind::FromArguments),
        ("FROM x\nCOPY onlyone", ParseErrorKind::NoDestination("COPY".into())),
        ("FROM x\nADD", ParseErrorKind::NoDestination("ADD".into())),
        ("FROM x\nWORKDIR", ParseErrorKind::ExactlyOneArgument("WORKDIR".into())),
        ("FROM x\nUSER", ParseErrorKind::ExactlyOneArgument("USER".into())),
        (
            "FROM x\nSTOPSIGNAL",
            ParseErrorKind::ExactlyOneArgument("STOPSIGNAL".into()),
        ),
        (
            "FROM x\nMAINTAINER",
            ParseErrorKind::ExactlyOneArgument("MAINTAINER".into()),
        ),
        ("FROM x\nEXPOSE", ParseErrorKind::AtLeastOneArgument("EXPOSE".into())),
        ("FROM x\nVOLUME", ParseErrorKind::AtLeastOneArgument("VOLUME".into())),
        ("FROM x\nVOLUME [\"\"]", ParseErrorKind::EmptyVolume),
        ("FROM x\nSHELL /bin/sh -c", ParseErrorKind::ShellNotJson),
        ("FROM x\nSHELL []", ParseErrorKind::AtLeastOneArgument("SHELL".into())),
        ("FROM x\nRUN [\"a\", 1]", ParseErrorKind::NotStringArray),
        ("FROM x\nCOPY [\"a\", null]", ParseErrorKind::NotStringArray),
        ("FROM x\nONBUILD", ParseErrorKind::AtLeastOneArgument("ONBUILD".into())),
        ("FROM x\nONBUILD ONBUILD RUN a", ParseErrorKind::OnBuildChaining),
        ("FROM x\nONBUILD from y", ParseErrorKind::OnBuildTrigger("FROM".into())),
        (
            "FROM x\nONBUILD MAINTAINER me",
            ParseErrorKind::OnBuildTrigger("MAINTAINER".into()),
        ),
        (
            "FROM x\nONBUILD BOGUS a",
            ParseErrorKind::UnknownInstruction("BOGUS".into()),
        ),
        (
            "FROM x\nHEALTHCHECK",
            ParseErrorKind::AtLeastOneArgument("HEALTHCHECK".into()),
        ),
        ("FROM x\nHEALTHCHECK NONE now", ParseErrorKind::HealthcheckNoneArguments),
        ("FROM x\nHEALTHCHECK CMD", ParseErrorKind::HealthcheckMissingCommand),
        (
            "FROM x\nHEALTHCHECK --interval=5s CMD",
            ParseErrorKind::HealthcheckMissingCommand,
        ),
        (
            "FROM x\nHEALTHCHECK RUN x",
            ParseErrorKind::HealthcheckUnknownType("RUN".into()),
        ),
    ];
    for (src, kind) in cases {
        let e = err(src);
        assert_eq!(&e.kind, kind, "{src}");
        assert_eq!(e.line, src.lines().count(), "{src}");
    }
}

#[test]
fn flag_errors() {
    let cases: &[(&str, ParseErrorKind)] = &[
        (
            "RUN --foo=bar x",
            ParseErrorKind::UnknownFlag {
                instruction: "RUN".into(),
                flag: "foo".into(),
            },
        ),
        (
            "CMD --x y",
            ParseErrorKind::UnknownFlag {
                instruction: "CMD".into(),
                flag: "x".into(),
            },
        ),
        (
            "COPY --from=a --from=b x y",
            ParseErrorKind::DuplicateFlag("from".into()),
        ),
        ("COPY --from x y", ParseErrorKind::MissingFlagValue("from".into())),
        ("COPY --link= x y", ParseErrorKind::MissingFlagValue("link".into())),
        (
            "COPY --link=maybe x y",
            ParseErrorKind::BadBoolFlag {
                flag: "link".into(),
                value: "maybe".into(),
            },
        ),
        (
            "FROM --platform alpine",
            ParseErrorKind::MissingFlagValue("platform".into()),
        ),
    ];
    for (src, kind) in cases {
        let e = err(&format!("FROM x\n{src}"));
        assert_eq!((&e.kind, e.line), (kind, 2), "{src}");
    }
    // Repeatable flags and booleans.
    assert_eq!(
        second("COPY --exclude=a --exclude=b --link=false x y")["flags"],
        json!(["--exclude=a", "--exclude=b", "--link=false"])
    );
}

#[test]
fn flag_words_follow_buildkit() {
    // Quotes in flags are removed, `--` ends the flags, a word not starting with `--` ends them.
    assert_eq!(
        second("RUN --mount=\"type=secret,id=a b\" cat")["flags"],
        json!(["--mount=type=secret,id=a b"])
    );
    let r = second("RUN --network=host -- --not-a-flag");
    assert_eq!(r["flags"], json!(["--network=host"]));
    assert_eq!(r["args"], json!(["--not-a-flag"]));
    let r = second("RUN echo --network=host");
    assert_eq!(r["flags"], json!([]));
    assert_eq!(r["args"], json!(["echo --network=host"]));
}

#[test]
fn healthcheck_forms() {
    let h = second("HEALTHCHECK --interval=5m --timeout=3s \\\n  CMD curl -f http://localhost/ || exit 1");
    assert_eq!(h["flags"], json!(["--interval=5m", "--timeout=3s"]));
    assert_eq!(h["args"], json!(["CMD", "curl -f http://localhost/ || exit 1"]));
    assert_eq!(h["json"], json!(false));
    let h = second("HEALTHCHECK --start-period=1s --start-interval=2s --retries=3 CMD [\"/bin/check\", \"-v\"]");
    assert_eq!(h["args"], json!(["CMD", "/bin/check", "-v"]));
    assert_eq!(h["json"], json!(true));
    let h = second("healthcheck none");
    assert_eq!(h["args"], json!(["none"]));
    assert_eq!(h["cmd"], json!("healthcheck"));
}

#[test]
fn onbuild_nests() {
    let o = second("ONBUILD ADD . /app/src");
    assert_eq!(o["cmd"], json!("onbuild"));
    assert_eq!(o["args"], json!([]));
    assert_eq!(o["next"], obj("add", &[], json!([".", "/app/src"]), false, 2));
    let o = second("onbuild COPY --from=build /usr/bin/app /app");
    assert_eq!(o["next"]["flags"], json!(["--from=build"]));
    let o = second("ONBUILD RUN [\"python-build\", \"--dir\", \"/app/src\"]");
    assert_eq!(o["next"]["json"], json!(true));
    assert_eq!(o["next"]["args"], json!(["python-build", "--dir", "/app/src"]));
    let o = second("ONBUILD ENV a b");
    assert_eq!(o["next"]["no_delim"], json!(true));
    let df = parse("FROM x\nONBUILD RUN echo hi\n").unwrap();
    match &df.instructions[1].args {
        Args::OnBuild(next) => assert_eq!(next.original, "RUN echo hi"),
        other => panic!("not onbuild: {other:?}"),
    }
}

#[test]
fn heredoc_run() {
    let v = ast("FROM debian\nRUN <<EOT bash\n  set -ex\n  apt-get update\nEOT\nRUN after\n");
    assert_eq!(v[1]["args"], json!(["<<EOT bash"]));
    assert_eq!(
        v[1]["heredocs"],
        json!([{"name": "EOT", "content": "  set -ex\n  apt-get update\n"}])
    );
    assert_eq!(v[2]["line"], json!(6));
    // Content is raw: comments, blank lines and escapes are kept.
    let v = ast("FROM x\nRUN <<EOF\n#!/usr/bin/env python\n\nprint(\"a\\\\b\") \\\nEOF\n");
    assert_eq!(
        v[1]["heredocs"][0]["content"],
        json!("#!/usr/bin/env python\n\nprint(\"a\\\\b\") \\\n")
    );
    // Empty body.
    assert_eq!(ast("FROM x\nRUN <<E\nE\n")[1]["heredocs"][0]["content"], json!(""));
}

#[test]
fn heredoc_several_per_line() {
    let v =
        ast("FROM alpine\nRUN <<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2\n");
    assert_eq!(
        v[1]["heredocs"],
        json!([{"name": "FILE1", "content": "I am\nfirst\n"}, {"name": "FILE2", "content": "I am\nsecond\n"}])
    );
    let v = ast("FROM x\nRUN <<A <<B\na\nA\nb\nB\n");
    assert_eq!(
        v[1]["heredocs"],
        json!([{"name": "A", "content": "a\n"}, {"name": "B", "content": "b\n"}])
    );
}

#[test]
fn heredoc_copy_chomp_and_quotes() {
    let df = parse("FROM alpine\nCOPY <<-EOT /script.sh\n\t\techo \"hello ${FOO}\"\n\tEOT\n").unwrap();
    let h = &df.instructions[1].heredocs[0];
    assert_eq!(
        (h.name.as_str(), h.content.as_str(), h.chomp, h.expand),
        ("EOT", "echo \"hello ${FOO}\"\n", true, true)
    );
    assert_eq!(df.instructions[1].words(), ["<<-EOT", "/script.sh"]);
    for (src, name) in [("<<-\"EOT\"", "EOT"), ("<<'EOT'", "EOT"), ("<<E\"O\"T", "EOT")] {
        let df = parse(&format!("FROM x\nCOPY {src} /f\nbody\nEOT\n")).unwrap();
        let h = &df.instructions[1].heredocs[0];
        assert_eq!(h.name, name, "{src}");
        assert!(!h.expand, "{src}");
        assert_eq!(h.content, "body\n");
    }
    // Without <<-, a tab-indented delimiter does not end the body.
    let e = err("FROM x\nCOPY <<EOT /f\n\tEOT\n");
    assert_eq!((e.line, e.kind), (2, ParseErrorKind::UnterminatedHeredoc("EOT".into())));
}

#[test]
fn heredoc_fd_add_and_onbuild() {
    let df = parse("FROM x\nRUN 3<<EOF cat /dev/fd/3\nx\nEOF\n").unwrap();
    assert_eq!(df.instructions[1].heredocs[0].fd, Some(3));
    assert_eq!(
        second("ADD <<EOF /f\nhi\nEOF")["heredocs"],
        json!([{"name": "EOF", "content": "hi\n"}])
    );
    let o = ast("FROM x\nONBUILD RUN <<EOF\nhi\nEOF\nRUN b\n");
    assert_eq!(o[1]["next"]["heredocs"], json!([{"name": "EOF", "content": "hi\n"}]));
    assert_eq!(o[2]["line"], json!(5));
}

#[test]
fn heredoc_only_where_allowed() {
    // Not on other instructions, not in exec form, not inside quotes.
    let v = ast("FROM x\nCMD <<EOF\nENV a=b\n");
    assert_eq!(v[1]["heredocs"], json!([]));
    assert_eq!(v[2]["cmd"], json!("env"));
    let v = ast("FROM x\nRUN [\"cat\", \"<<EOF\"]\nRUN echo '<<EOF' \"<<X\"\nRUN a<<b\n");
    for i in 1..4 {
        assert_eq!(v[i]["heredocs"], json!([]), "{i}");
    }
}

#[test]
fn heredoc_after_continuation() {
    let v = ast("FROM x\nRUN --mount=type=cache,target=/c \\\n  <<EOF\necho hi\nEOF\n");
    assert_eq!(v[1]["args"], json!(["<<EOF"]));
    assert_eq!(v[1]["heredocs"][0]["content"], json!("echo hi\n"));
}

#[test]
fn case_insensitive_keywords() {
    let v = ast("from x\nRuN a\nCoPy a b\nenv A=1\n");
    let cmds: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["cmd"].as_str().unwrap())
        .collect();
    assert_eq!(cmds, ["from", "run", "copy", "env"]);
}

#[test]
fn command_lookup() {
    for c in Command::ALL {
        assert_eq!(Command::from_name(&c.upper()), Some(c));
    }
    assert_eq!(Command::from_name("nope"), None);
}

#[test]
fn onbuild_flag_rules() {
    assert_eq!(
        err("FROM x\nONBUILD --x RUN a").kind,
        ParseErrorKind::UnknownFlag {
            instruction: "ONBUILD".into(),
            flag: "x".into()
        }
    );
    assert_eq!(
        err("FROM x\nONBUILD RUN --bogus a").kind,
        ParseErrorKind::UnknownFlag {
            instruction: "RUN".into(),
            flag: "bogus".into()
        }
    );
}

#[test]
fn full_file_lines_and_substitution_roundtrip() {
    let src = "# syntax=docker/dockerfile:1\n\nARG BASE=busybox\nFROM ${BASE} AS base\nENV FOO=/bar \\\n    GREETING=\"hello world\"\nWORKDIR ${FOO}\nADD . $FOO\nCOPY \\$FOO /quux\n\n# done\nCMD [\"sh\"]\n";
    let df = parse(src).unwrap();
    let lines: Vec<usize> = df.instructions.iter().map(|i| i.line).collect();
    assert_eq!(lines, [3, 4, 5, 7, 8, 9, 12]);
    let env = df.instructions[2].key_values().to_vec();
    assert_eq!(env[1].value.as_deref(), Some("\"hello world\""));
    let vars = |n: &str| match n {
        "FOO" => Some("/bar".to_string()),
        _ => None,
    };
    let exp = |w: &str| crate::expand::expand(w, &vars, df.directives.escape).unwrap();
    assert_eq!(exp(env[1].value.as_deref().unwrap()), "hello world");
    assert_eq!(exp(&df.instructions[3].words()[0]), "/bar");
    let add: Vec<String> = df.instructions[4].words().iter().map(|w| exp(w)).collect();
    assert_eq!(add, [".", "/bar"]);
    assert_eq!(exp(&df.instructions[5].words()[0]), "$FOO");
}
