// Help as kubectl's: examples under "Examples:", each a "# what it does" line and a command that
// can be copied whole. yargs wraps long lines at any space (in the middle of a command): long
// commands are broken here instead, before a flag, with a shell line continuation.
export type Example = [description: string, command: string];

/** Lines of a command no longer than `width`, broken before flags, each but the last ending in " \". */
export function breakCommand(command: string, width = 76): string[] {
  const words = command.split(/ (?=--?[a-zA-Z])/);
  const lines: string[] = [];
  let line = "";
  for (const word of words) {
    if (line && line.length + 1 + word.length + 2 > width) {
      lines.push(`${line} \\`);
      line = `    ${word}`;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return lines;
}

export function examplesText(list: Example[]): string {
  return ["Examples:", ...list.flatMap(([description, command], i) => [...(i ? [""] : []), `  # ${description}`, ...breakCommand(command).map((l) => `  ${l}`)])].join("\n");
}
