/** Shell completion scripts, generated from the command tree (so they never fall behind). */
import type { Command } from 'commander';

function words(program: Command) {
  return program.commands.map((c) => ({
    name: c.name(),
    options: c.options.flatMap((o) => [o.long, o.short].filter((x): x is string => !!x)),
    subcommands: c.commands.map((s) => s.name()),
  }));
}

const KIND_COMMANDS = ['get', 'describe', 'create', 'patch', 'delete', 'wait'];

export function completion(
  program: Command,
  shell: 'bash' | 'zsh',
  kinds: readonly string[],
): string {
  const cmds = words(program);
  const global = program.options.flatMap((o) => [o.long, o.short].filter((x): x is string => !!x));
  const names = cmds.map((c) => c.name).join(' ');
  const cases = cmds
    .map((c) => {
      const second = KIND_COMMANDS.includes(c.name) ? kinds.join(' ') : c.subcommands.join(' ');
      const shells = c.name === 'completion' ? 'bash zsh' : '';
      return `    ${c.name}) second="${second}${shells ? ' ' + shells : ''}"; opts="${c.options.join(' ')} ${global.join(' ')}" ;;`;
    })
    .join('\n');
  const bash = `# latticectl completion for bash: source <(latticectl completion bash)
_latticectl() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" cmd="" i second="" opts="${global.join(' ')} --help"
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in -*) ;; *) cmd="\${COMP_WORDS[i]}"; break ;; esac
  done
  if [[ -z "$cmd" ]]; then
    COMPREPLY=($(compgen -W "${names} $opts" -- "$cur")); return
  fi
  case "$cmd" in
${cases}
  esac
  if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$opts --help" -- "$cur"))
  elif [[ $COMP_CWORD -eq $((i + 1)) ]]; then COMPREPLY=($(compgen -W "$second" -- "$cur"))
  else COMPREPLY=($(compgen -f -- "$cur")); fi
}
complete -F _latticectl latticectl`;
  if (shell === 'bash') return bash;
  return `#compdef latticectl
# latticectl completion for zsh: source <(latticectl completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bash}`;
}
