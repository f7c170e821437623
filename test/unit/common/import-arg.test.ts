import { describe, expect, it } from "vitest";
import { formatImportArg, importArgsOf, parseImportArg } from "../../../common/import-arg.ts";

describe("--import=NAME=PORT", () => {
  it.each([
    { name: "cluster2-pod-lister", port: 17001 },
    { name: "b.c", port: 1 },
    { name: "a", port: 65535 },
  ])("round-trips $name=$port", (i) => {
    const arg = formatImportArg(i);
    expect(arg).toBe(`--import=${i.name}=${i.port}`);
    expect(parseImportArg(arg.slice("--import=".length))).toEqual(i);
  });

  it.each([
    { value: "a", error: /^--import=a: expected NAME=PORT/ },
    { value: "=17001", error: /expected NAME=PORT/ },
    { value: "Bad_Name=17001", error: /"Bad_Name" is not a valid import name/ },
    { value: "a=http", error: /^--import=a=http: "http" is not a port number$/ },
    { value: "a=0", error: /port 0 is out of range 1-65535/ },
    { value: "a=65536", error: /port 65536 is out of range/ },
  ])("refuses $value in one line", ({ value, error }) => {
    expect(() => parseImportArg(value)).toThrow(error);
  });

  it("reads the valid --import arguments of a container and skips the rest", () => {
    expect(importArgsOf(["--secrets-dir=/s", "--import=a=17001", "--import=Bad_Name=1", "--import=b=17002"])).toEqual([
      { name: "a", port: 17001 },
      { name: "b", port: 17002 },
    ]);
    expect(importArgsOf(undefined)).toEqual([]);
  });
});
