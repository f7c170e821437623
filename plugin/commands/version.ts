import { VERSION_STRING } from "../version.ts";

export function handler(): void {
  console.log(`kubectl-mcsa ${VERSION_STRING}`);
}
