// The token-file source and authenticator: a new token from the next request on after the
// kubelet's swap, a periodic read for writes in place, the last good token kept on failure.
import { chmodSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { KubeConfig } from "@kubernetes/client-node";
import { ClientConfigError, TokenFileAuthenticator, TokenFileSource } from "../../../client/src/index.ts";
import { Fixture, authorization } from "./fixtures.ts";

let fx: Fixture;
beforeEach(() => {
  fx = new Fixture();
});
afterEach(() => fx.remove());

describe("TokenFileSource", () => {
  it("returns the new token right after the kubelet's atomic swap, without waiting for the refresh period", async () => {
    const dir = await fx.secretImport("a", "token-1");
    const source = new TokenFileSource({ refreshMs: 3_600_000 });
    expect(await source.token(join(dir, "token"))).toBe("token-1");
    await fx.secretImport("a", "token-2");
    expect(await source.token(join(dir, "token"))).toBe("token-2");
    await fx.secretImport("a", "token-3");
    expect(await source.token(join(dir, "token"))).toBe("token-3");
  });

  it("reads a file rewritten in place again once the refresh period has passed", async () => {
    let now = 0;
    const path = fx.file("t", "aaaa");
    const source = new TokenFileSource({ refreshMs: 60_000, now: () => now });
    expect(await source.token(path)).toBe("aaaa");
    // Same inode, same size; the change time may or may not differ within the clock's resolution.
    chmodSync(path, 0o644);
    writeFileSync(path, "bbbb");
    now = 60_000;
    expect(await source.token(path)).toBe("bbbb");
  });

  it("trims the token, keeps the last good one when the file goes, and says why when it never read one", async () => {
    const path = fx.file("t", "  secret-token\n");
    const source = new TokenFileSource({ refreshMs: 0 });
    expect(await source.token(path)).toBe("secret-token");
    rmSync(path);
    expect(await source.token(path)).toBe("secret-token");

    const fresh = new TokenFileSource();
    const error = await fresh.token(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClientConfigError);
    expect(error).toMatchObject({ code: "FileUnreadable", path, message: `cannot read the token file ${path}: it does not exist` });
  });

  it("refuses an empty file", async () => {
    const path = fx.file("t", "\n");
    await expect(new TokenFileSource().token(path)).rejects.toThrow(`cannot read the token file ${path}: it is empty`);
  });

  it("reads again after invalidate", async () => {
    const path = fx.file("t", "aaaa");
    const source = new TokenFileSource({ refreshMs: 3_600_000, now: () => 0 });
    expect(await source.token(path)).toBe("aaaa");
    chmodSync(path, 0o644);
    writeFileSync(path, "bbbb");
    source.invalidate(path);
    expect(await source.token(path)).toBe("bbbb");
  });
});

describe("TokenFileAuthenticator", () => {
  it("authenticates the users registered with it, and leaves the others alone", async () => {
    const dir = await fx.secretImport("a", "token-1");
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "c", server: "https://c.example", skipTLSVerify: false }],
      users: [{ name: "file-user" }, { name: "inline-user", token: "inline" }],
      contexts: [
        { name: "file", cluster: "c", user: "file-user" },
        { name: "inline", cluster: "c", user: "inline-user" },
      ],
      currentContext: "file",
    });
    const auth = new TokenFileAuthenticator().register("file-user", join(dir, "token"));
    kc.addAuthenticator(auth);
    expect(await authorization(kc)).toBe("Bearer token-1");
    await fx.secretImport("a", "token-2");
    expect(await authorization(kc)).toBe("Bearer token-2");
    kc.setCurrentContext("inline");
    expect(await authorization(kc)).toBe("Bearer inline");
    expect(auth.tokenFile("file-user")).toBe(join(dir, "token"));
    expect(auth.tokenFile("inline-user")).toBeUndefined();
  });
});
