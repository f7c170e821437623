import { VERSION_STRING } from "../version.ts";

export const command = "version";
export const describe = "Print the version of kubectl mcsa";
export function handler(): void {
  console.log(`kubectl-mcsa ${VERSION_STRING}`);
}
