//! The README's resident journey, run as written: every fenced block of
//! README.md that follows a `<!-- journey -->` marker is taken apart into
//! commands (`$ ` lines, with `\` continuations and here-documents) and the
//! output shown under each; the commands run in order in one bash session,
//! in an empty directory, against a fresh `zhangban-server serve --demo` on
//! a free port, with `zb` and `zhangban-server` standing for the binaries
//! cargo built. A command fails the test if it exits otherwise than shown
//! (`(exit N)`, else 0) or if the lines shown are not in its output, in
//! order (`…` matches any text; lines left out are skipped).
//!
//! Needs the binaries: `cargo build -p zhangban-server -p zhangban-core
//! --features zhangban-core/cli --bins` (the workspace test run builds them).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use zhangban_tests::process::{ServerProcess, server_bin, zhangban_bin};

/// The marker before each block the test runs.
const MARKER: &str = "<!-- journey -->";

/// One command of the journey and what it must show.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    /// The command as bash reads it (continuations and here-documents kept).
    command: String,
    /// Lines its output must contain, in order (`…` = any text).
    expected: Vec<String>,
    /// Its exit status.
    exit: i32,
    /// Where it is in README.md (1-based line), for the failure message.
    line: usize,
}

/// The heredoc delimiter a command line opens, if any (`<<'EOF'`, `<<EOF`).
fn heredoc_delimiter(line: &str) -> Option<String> {
    let at = line.find("<<")?;
    let rest = line[at + 2..].trim_start_matches('-').trim_start();
    let word: String = rest
        .trim_start_matches(['\'', '"'])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty()).then_some(word)
}

/// The steps of every marked block of `readme`, in order.
fn journey_steps(readme: &str) -> Vec<Step> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut steps: Vec<Step> = Vec::new();
    let mut i = 0;
    let mut blocks = 0;
    while i < lines.len() {
        if lines[i].trim() != MARKER {
            i += 1;
            continue;
        }
        blocks += 1;
        i += 1;
        assert!(
            lines.get(i).is_some_and(|l| l.starts_with("```")),
            "README.md line {}: a journey marker must be followed by a fenced block",
            i + 1
        );
        i += 1;
        while i < lines.len() && !lines[i].starts_with("```") {
            let line = lines[i];
            if let Some(cmd) = line.strip_prefix("$ ") {
                let start = i + 1;
                let mut command = cmd.to_owned();
                // `\` continuations.
                while command.ends_with('\\') && i + 1 < lines.len() {
                    i += 1;
                    command.push('\n');
                    command.push_str(lines[i]);
                }
                // A here-document: its body, up to the delimiter line.
                if let Some(delim) = heredoc_delimiter(&command) {
                    loop {
                        i += 1;
                        let body = lines.get(i).unwrap_or_else(|| {
                            panic!("README.md line {start}: here-document `{delim}` never ends")
                        });
                        command.push('\n');
                        command.push_str(body);
                        if body.trim() == delim {
                            break;
                        }
                    }
                }
                steps.push(Step {
                    command,
                    expected: Vec::new(),
                    exit: 0,
                    line: start,
                });
            } else if let Some(step) = steps.last_mut() {
                let t = line.trim();
                if let Some(code) = t.strip_prefix("(exit ").and_then(|r| r.strip_suffix(')')) {
                    step.exit = code.parse().unwrap_or_else(|_| {
                        panic!("README.md line {}: bad exit status `{t}`", i + 1)
                    });
                } else if !t.is_empty() && t != "…" {
                    step.expected.push(t.to_owned());
                }
            } else {
                panic!(
                    "README.md line {}: output before the block's first command",
                    i + 1
                );
            }
            i += 1;
        }
        i += 1;
    }
    assert!(blocks > 0, "README.md has no `{MARKER}` block");
    steps
}

/// Whether `line` matches `pattern`, where `…` stands for any text.
fn line_matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split('…').collect();
    let line = line.trim();
    if parts.len() == 1 {
        return line == pattern;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !line.starts_with(first) || line.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &line[first.len()..];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(at) => rest = &rest[at + mid.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// The first expected line not found (in order) in `output`, if any.
fn first_missing<'a>(expected: &'a [String], output: &str) -> Option<&'a str> {
    let mut lines = output.lines();
    expected
        .iter()
        .find(|want| !lines.by_ref().any(|got| line_matches(want, got)))
        .map(String::as_str)
}

/// The bash script: the two commands as functions, then each step with its
/// output and status recorded; it stops at the first unexpected status.
fn script(steps: &[Step], out: &Path) -> String {
    let mut s = String::from(
        "set -u\n\
         zb() { \"$JOURNEY_ZHANGBAN\" phone \"$@\"; }\n\
         zhangban-server() { \"$JOURNEY_SERVER\" \"$@\"; }\n",
    );
    for (n, step) in steps.iter().enumerate() {
        let o = out.join(format!("{n}.out"));
        let _ = writeln!(
            s,
            "{{\n{}\n}} > '{o}' 2>&1\nrc=$?\necho $rc > '{o}.rc'\n[ $rc -eq {} ] || exit 100",
            step.command,
            step.exit,
            o = o.display()
        );
    }
    s
}

#[test]
fn the_readme_journey_runs_as_written() {
    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let steps = journey_steps(&readme);
    assert!(steps.len() >= 20, "only {} steps found", steps.len());

    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_in(dir.path());
    let script_path = out.path().join("journey.sh");
    std::fs::write(&script_path, script(&steps, out.path())).unwrap();
    let run = Command::new("bash")
        .arg(&script_path)
        .current_dir(dir.path())
        .env("JOURNEY_ZHANGBAN", zhangban_bin())
        .env("JOURNEY_SERVER", server_bin())
        .env("ZHANGBAN_SERVER", &server.url)
        .env_remove("ZHANGBAN_PHONE_STORE")
        .env_remove("ZHANGBAN_ROOT_PUB")
        .env_remove("ZHANGBAN_DATA_DIR")
        .env_remove("ZHANGBAN_OPERATOR_TOKEN")
        .output()
        .unwrap();

    for (n, step) in steps.iter().enumerate() {
        let o = out.path().join(format!("{n}.out"));
        let output = std::fs::read_to_string(&o).unwrap_or_default();
        let rc: Option<i32> = std::fs::read_to_string(o.with_extension("out.rc"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let context = || {
            format!(
                "README.md line {}:\n$ {}\n--- its output ---\n{output}\n--- the journey's stderr ---\n{}\n--- server log (tail) ---\n{}",
                step.line,
                step.command,
                String::from_utf8_lossy(&run.stderr),
                server
                    .log_text()
                    .lines()
                    .rev()
                    .take(20)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        };
        let Some(rc) = rc else {
            panic!("the journey stopped before this command\n{}", context());
        };
        assert_eq!(rc, step.exit, "exit status\n{}", context());
        if let Some(missing) = first_missing(&step.expected, &output) {
            panic!(
                "the README shows `{missing}`, not in this output (in order)\n{}",
                context()
            );
        }
    }
    assert!(run.status.success(), "{run:?}");
}

#[test]
fn the_journey_parser_and_matcher_are_strict() {
    let readme = "text\n<!-- journey -->\n```\n$ echo a \\\n   b\na b\n$ cat > f <<'EOF'\nx\nEOF\n$ false\n(exit 1)\n```\n$ not run\n";
    let steps = journey_steps(readme);
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert_eq!(steps[0].command, "echo a \\\n   b");
    assert_eq!(steps[0].expected, vec!["a b"]);
    assert_eq!(steps[1].command, "cat > f <<'EOF'\nx\nEOF");
    assert!(steps[1].expected.is_empty());
    assert_eq!(steps[2].exit, 1);

    assert!(line_matches("queued as …", "queued as 7a7d"));
    assert!(line_matches(
        "… accepted  attempts 2  5116…  accepted",
        "ab accepted  attempts 2  5116022026  accepted"
    ));
    assert!(!line_matches("queued as …", "queued  as 7a7d"));
    assert!(!line_matches(
        "\"wire_bytes\": 215633,",
        "\"wire_bytes\": 324067,"
    ));
    assert!(!line_matches("a…a", "a"));
    // In order, and each output line used once.
    let want = vec!["one".to_owned(), "two".to_owned()];
    assert_eq!(first_missing(&want, "one\ntwo\n"), None);
    assert_eq!(first_missing(&want, "two\none\n"), Some("two"));
    assert_eq!(first_missing(&want[..1], "x\n"), Some("one"));
}
