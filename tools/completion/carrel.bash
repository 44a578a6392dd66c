# bash completion for carrel and carrel-bench. Installed twice, as
# share/bash-completion/completions/carrel and .../carrel-bench, so that
# bash-completion loads it on the first Tab for either command; sourcing it
# directly (`. carrel.bash`) works too and needs nothing else.
#
# Commands and options are read from the tools' own --help (and carrel-bench
# --list), so the completion follows the installed version of the tool.

# _carrel_section HEADER: from CLI11 help text on stdin, the first word of each
# entry under "HEADER:" ("Subcommands", "Options", "workloads", ...).
_carrel_section() {
  local header=$1 line in=0
  while IFS= read -r line; do
    if [[ $line == "$header:" ]]; then
      in=1
    elif [[ $line =~ ^[^[:space:]] ]]; then
      in=0
    elif ((in)) && [[ $line =~ ^\ \ ([^[:space:]]+) ]]; then
      printf '%s\n' "${BASH_REMATCH[1]//,/ }"
    fi
  done
}

# _carrel_valued: from help text on stdin, the options that take a value (their
# entry names a type: "--limit UINT", "-o,--output TEXT").
_carrel_valued() {
  local line
  while IFS= read -r line; do
    [[ $line =~ ^\ \ (-[^[:space:]]+)\ [A-Z] ]] && printf '%s\n' "${BASH_REMATCH[1]//,/ }"
  done
}

# _carrel_reply WORDS: COMPREPLY from the (blank-separated) words that start
# with the current word, each once.
_carrel_reply() {
  local words
  words=$(tr ' ' '\n' <<<"$1" | awk 'NF && !seen[$0]++')
  mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
}

# _carrel_files KIND: COMPREPLY from compgen -KIND (d: directories, f: files).
_carrel_files() {
  mapfile -t COMPREPLY < <(compgen "-$1" -- "$cur")
}

_carrel() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
  local prog=${COMP_WORDS[0]} top help w i
  local -a path=()
  COMPREPLY=()
  top=$("$prog" --help 2>/dev/null) || return 0
  help=$top
  # Global options (--dir, --json) are accepted after the command too.
  local valued globals
  valued=" $(_carrel_valued <<<"$top" | tr '\n' ' ') "
  globals=$(_carrel_section Options <<<"$top")
  # Walk the words before the cursor: descend into each subcommand named,
  # skipping option values.
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    [[ $w == -* ]] && continue
    [[ $valued == *" ${COMP_WORDS[i - 1]} "* ]] && continue
    if [[ $'\n'$(_carrel_section Subcommands <<<"$help")$'\n' == *$'\n'"$w"$'\n'* ]]; then
      path+=("$w")
      help=$("$prog" "${path[@]}" --help 2>/dev/null) || return 0
      valued+="$(_carrel_valued <<<"$help" | tr '\n' ' ') "
    fi
  done
  if [[ $valued == *" $prev "* ]]; then
    case $prev in
      --dir) _carrel_files d ;;
      -o | --output | -i | --input | --value-file) _carrel_files f ;;
    esac
    return 0
  fi
  if [[ $cur == -* ]]; then
    _carrel_reply "$(_carrel_section Options <<<"$help") $globals"
  else
    _carrel_reply "$(_carrel_section Subcommands <<<"$help")"
  fi
  return 0
}

_carrel_bench() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
  local prog=${COMP_WORDS[0]} help list
  COMPREPLY=()
  help=$("$prog" --help 2>/dev/null) || return 0
  case $prev in
    --dir) _carrel_files d; return 0 ;;
    --json | --tsv | --ack-log | --verify-ack-log) _carrel_files f; return 0 ;;
    --durability) _carrel_reply "sync nosync"; return 0 ;;
    --popularity) _carrel_reply "uniform zipfian"; return 0 ;;
    --engines)
      list=$("$prog" --list 2>/dev/null)
      _carrel_reply "$(_carrel_section engines <<<"$list")"
      return 0
      ;;
  esac
  [[ " $(_carrel_valued <<<"$help" | tr '\n' ' ') " == *" $prev "* ]] && return 0
  if [[ $cur == -* ]]; then
    _carrel_reply "$(_carrel_section Options <<<"$help")"
  else
    list=$("$prog" --list 2>/dev/null)
    _carrel_reply "$(_carrel_section workloads <<<"$list")"
  fi
  return 0
}

complete -F _carrel carrel
complete -F _carrel_bench carrel-bench
