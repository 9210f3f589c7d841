//! The bash, zsh and fish completion scripts `hammer completion <shell>`
//! prints, written from the command table's words and getopt's option
//! strings, so that they complete what the parser takes and nothing else
//! (cli.md §21).

use std::ffi::OsStr;
use std::fmt::Write as _;

use super::getopt::{takes_argument, OPTSTRING, OWN_OPTSTRING};
use super::table;
use super::usage::OPTIONS;

/// A shell `hammer completion` writes a script for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    /// Each shell by the word that names it.
    pub const ALL: [(&'static str, Shell); 3] = [
        ("bash", Shell::Bash),
        ("zsh", Shell::Zsh),
        ("fish", Shell::Fish),
    ];

    pub fn of(word: &OsStr) -> Option<Shell> {
        Shell::ALL
            .iter()
            .find(|(name, _)| OsStr::new(name) == word)
            .map(|&(_, shell)| shell)
    }
}

/// The options whose value is a file: `-c cyclefile`, `-e scoreboardfile`,
/// `-j dest` (a file, `-` or `fd:N`).
const FILE_VALUES: &[char] = &['c', 'e', 'j'];

/// One global option as the scripts offer it.
struct Opt {
    letter: char,
    takes_value: bool,
    description: String,
}

/// Every option letter of getopt's strings, in their order, described by
/// the help's options list (`-h` is in getopt's string, not in that list).
fn options() -> Vec<Opt> {
    let described: Vec<(char, &str)> = OPTIONS
        .lines()
        .filter_map(|l| l.trim_start().split_once("  "))
        .flat_map(|(spec, description)| {
            spec.split(", ")
                .filter_map(|o| o.strip_prefix('-')?.chars().next())
                .map(move |c| (c, description.trim()))
        })
        .collect();
    format!("{OPTSTRING}{OWN_OPTSTRING}")
        .chars()
        .filter(|&c| c != ':')
        .map(|letter| Opt {
            letter,
            takes_value: takes_argument(letter) == Some(true),
            description: match described.iter().find(|(c, _)| *c == letter) {
                Some((_, d)) => d.to_string(),
                None => "this help".to_string(),
            },
        })
        .collect()
}

/// The command words, in the help's order.
fn words() -> Vec<&'static str> {
    table::entries().map(|e| e.word).collect()
}

/// The letters of the options that take a value.
fn value_letters() -> String {
    options()
        .iter()
        .filter(|o| o.takes_value)
        .map(|o| o.letter)
        .collect()
}

/// `text` in single quotes for any of the three shells.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `text` in fish's single quotes, where a backslash escapes `'` and `\`.
fn fish_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\\', r"\\").replace('\'', r"\'"))
}

/// The script for `shell`.
pub fn script(shell: Shell) -> String {
    match shell {
        Shell::Bash => bash(),
        Shell::Zsh => zsh(),
        Shell::Fish => fish(),
    }
}

fn bash() -> String {
    let opts: Vec<String> = options()
        .iter()
        .map(|o| format!("-{}", o.letter))
        .chain(["--help".into(), "--version".into()])
        .collect();
    let shells: Vec<&str> = Shell::ALL.iter().map(|(n, _)| *n).collect();
    format!(
        r#"# bash completion for hammer (hammer-mirror), printed by `hammer completion bash`.
_hammer() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} i=1 word before
    COMPREPLY=()
    # The options come before the command word (getopt stops at it); an
    # option taking a value takes the next word when it ends its cluster.
    while (( i < COMP_CWORD )); do
        word=${{COMP_WORDS[i]}}
        case $word in
            --) (( i++ )); break ;;
            -?*)
                before=${{word#-}}
                before=${{before%%[{values}]*}}
                if (( ${{#before}} == ${{#word}} - 2 )); then (( i += 2 )); else (( i++ )); fi
                ;;
            *) break ;;
        esac
    done
    if (( i > COMP_CWORD )); then
        # The value of the option ending the previous word.
        case ${{COMP_WORDS[COMP_CWORD-1]}} in
            *[{files}]) mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
        esac
        return 0
    fi
    if (( i == COMP_CWORD )); then
        if [[ $cur == -* ]]; then
            COMPREPLY=( $(compgen -W {opts} -- "$cur") )
        else
            COMPREPLY=( $(compgen -W {words} -- "$cur") )
        fi
        return 0
    fi
    case ${{COMP_WORDS[i]}} in
        help) COMPREPLY=( $(compgen -W {words} -- "$cur") ) ;;
        completion) COMPREPLY=( $(compgen -W {shells} -- "$cur") ) ;;
        # One path a line: a name with blanks stays whole.
        *) mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
    esac
    return 0
}}
complete -o filenames -F _hammer hammer
"#,
        values = value_letters(),
        files = FILE_VALUES.iter().collect::<String>(),
        opts = quoted(&opts.join(" ")),
        words = quoted(&words().join(" ")),
        shells = quoted(&shells.join(" ")),
    )
}

fn zsh() -> String {
    let mut specs = String::new();
    for o in options() {
        // In a description `]` and `\` are quoted with a backslash.
        let d = o.description.replace('\\', r"\\").replace(']', r"\]");
        let spec = match (o.takes_value, FILE_VALUES.contains(&o.letter)) {
            (false, _) => format!("-{}[{d}]", o.letter),
            (true, true) => format!("-{}+[{d}]:file:_files", o.letter),
            (true, false) => format!("-{}+[{d}]:value: ", o.letter),
        };
        let _ = writeln!(specs, "        {} \\", quoted(&spec));
    }
    let mut commands = String::new();
    for e in table::entries() {
        let _ = writeln!(
            commands,
            "        {}",
            quoted(&format!("{}:{}", e.word, e.synopsis))
        );
    }
    let shells: Vec<&str> = Shell::ALL.iter().map(|(n, _)| *n).collect();
    format!(
        r#"#compdef hammer
# zsh completion for hammer (hammer-mirror), printed by `hammer completion zsh`.
_hammer() {{
    local -a commands
    local state line
    commands=(
{commands}    )
    # Options only before the command word, as getopt reads them.
    _arguments -s -S -A '-*' \
{specs}        '(- *)--help[this help]' \
        '(- *)--version[the version]' \
        '1:command:->command' \
        '*::argument:->argument'
    case $state in
        command) _describe -t commands 'hammer command' commands ;;
        argument)
            case $line[1] in
                help) _describe -t commands 'hammer command' commands ;;
                completion) _values shell {shells} ;;
                *) _files ;;
            esac
            ;;
    esac
}}
if [[ $funcstack[1] == _hammer ]]; then
    _hammer "$@"
else
    compdef _hammer hammer
fi
"#,
        shells = shells.join(" "),
    )
}

fn fish() -> String {
    let values = value_letters();
    let mut t = format!(
        r#"# fish completion for hammer (hammer-mirror), printed by `hammer completion fish`.
# The command word: the first word after the options (getopt stops at it);
# an option taking a value takes the next word when it ends its cluster.
function __hammer_command
    set -l words (commandline -opc)
    set -e words[1]
    set -l skip 0
    set -l ended 0
    for w in $words
        if test $skip = 1
            set skip 0
        else if test $ended = 0; and test "$w" = --
            set ended 1
        else if test $ended = 0; and string match -qr -- '^-.' $w
            string match -qr -- '^-[^{values}]*[{values}]$' $w; and set skip 1
        else
            echo $w
            return 0
        end
    end
    return 1
end
function __hammer_command_is
    contains -- (__hammer_command) $argv
end
complete -c hammer -f
complete -c hammer -n 'not __hammer_command' -l help -d 'this help'
complete -c hammer -n 'not __hammer_command' -l version -d 'the version'
"#
    );
    for o in options() {
        let value = match (o.takes_value, FILE_VALUES.contains(&o.letter)) {
            (false, _) => "",
            (true, true) => " -r -F",
            (true, false) => " -x",
        };
        let _ = writeln!(
            t,
            "complete -c hammer -n 'not __hammer_command' -s {}{value} -d {}",
            o.letter,
            fish_quoted(&o.description)
        );
    }
    for e in table::entries() {
        let _ = writeln!(
            t,
            "complete -c hammer -n 'not __hammer_command' -a {} -d {}",
            e.word,
            fish_quoted(e.synopsis)
        );
    }
    let shells: Vec<&str> = Shell::ALL.iter().map(|(n, _)| *n).collect();
    let _ = writeln!(
        t,
        "complete -c hammer -n '__hammer_command_is help' -a {}",
        fish_quoted(&words().join(" "))
    );
    let _ = writeln!(
        t,
        "complete -c hammer -n '__hammer_command_is completion' -a {}",
        fish_quoted(&shells.join(" "))
    );
    t.push_str(
        "complete -c hammer -n '__hammer_command; and not __hammer_command_is help completion' -F\n",
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_letter_is_offered_with_its_description() {
        let opts = options();
        let letters: String = opts.iter().map(|o| o.letter).collect();
        assert_eq!(letters, "bcdehfimpqrtv2yABCFRSTXzjwan");
        for o in &opts {
            assert!(!o.description.is_empty(), "-{}", o.letter);
        }
        let z = opts.iter().find(|o| o.letter == 'z').unwrap();
        assert_eq!(
            z.description,
            "compress the stream with zstd (-zz, -zzz: harder)"
        );
        for c in FILE_VALUES {
            assert_eq!(takes_argument(*c), Some(true), "-{c}");
        }
    }

    #[test]
    fn every_script_names_every_command_word() {
        for (_, shell) in Shell::ALL {
            let s = script(shell);
            for e in table::entries() {
                assert!(s.contains(e.word), "{shell:?}: {}", e.word);
            }
        }
    }
}
