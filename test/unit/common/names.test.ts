import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  envVarName,
  parseImportAnnotation,
  secretVolumeName,
  toDnsLabel,
  validateDnsLabel,
  validateDnsSubdomain,
} from "../../../common/names.ts";

describe("parseImportAnnotation", () => {
  it("splits, trims, drops empties and keeps first occurrences in order", () => {
    expect(parseImportAnnotation(" b , a,,b, ,c,a ")).toEqual(["b", "a", "c"]);
  });

  it("reads a missing or blank annotation as no imports", () => {
    expect(parseImportAnnotation(undefined)).toEqual([]);
    expect(parseImportAnnotation("")).toEqual([]);
    expect(parseImportAnnotation(" , ,")).toEqual([]);
  });

  it("is idempotent and yields no empties or duplicates (property)", () => {
    const piece = fc.oneof(fc.constantFrom("", " ", "a", "b", " a ", "cluster2-x"), fc.string({ maxLength: 6 }));
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (parts) => {
        const once = parseImportAnnotation(parts.join(","));
        expect(parseImportAnnotation(once.join(","))).toEqual(once);
        expect(once.every((n) => n !== "" && n === n.trim())).toBe(true);
        expect(new Set(once).size).toBe(once.length);
      }),
    );
  });
});

describe("validateDnsSubdomain / validateDnsLabel", () => {
  it("accepts valid names", () => {
    expect(validateDnsSubdomain("cluster2.default-pod-lister")).toBeUndefined();
    expect(validateDnsSubdomain("a".repeat(253))).toBeUndefined();
    expect(validateDnsLabel("123-abc")).toBeUndefined();
    expect(validateDnsLabel("a".repeat(63))).toBeUndefined();
  });

  it("rejects invalid names with kubectl's wording", () => {
    expect(validateDnsLabel("Foo")).toMatch(
      /^a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character/,
    );
    expect(validateDnsLabel("a.b")).toMatch(/RFC 1123 label/);
    expect(validateDnsLabel("-a")).toMatch(/RFC 1123 label/);
    expect(validateDnsSubdomain("a_b")).toMatch(/^a lowercase RFC 1123 subdomain must consist of/);
    expect(validateDnsSubdomain("a..b")).toMatch(/RFC 1123 subdomain/);
  });

  it("reports length and emptiness", () => {
    expect(validateDnsLabel("a".repeat(64))).toBe("must be no more than 63 characters");
    expect(validateDnsSubdomain("a".repeat(254))).toBe("must be no more than 253 characters");
    expect(validateDnsLabel("")).toBe("must not be empty");
    expect(validateDnsSubdomain("")).toBe("must not be empty");
  });
});

describe("toDnsLabel", () => {
  it("sanitizes kubeconfig cluster names", () => {
    expect(toDnsLabel("kind-Cluster_2")).toBe("kind-cluster-2");
    expect(toDnsLabel("arn:aws:eks:us-east-1:123:cluster/prod")).toBe("arn-aws-eks-us-east-1-123-cluster-prod");
    expect(toDnsLabel("gke_my-project_europe-west1_main")).toBe("gke-my-project-europe-west1-main");
    expect(toDnsLabel("  Café--Prod!! ")).toBe("cafe-prod");
  });

  it("truncates long names with a stable hash that keeps them apart", () => {
    const a = toDnsLabel(`${"x".repeat(70)}-a`);
    const b = toDnsLabel(`${"x".repeat(70)}-b`);
    expect(a.length).toBeLessThanOrEqual(63);
    expect(a).not.toBe(b);
    expect(toDnsLabel(`${"x".repeat(70)}-a`)).toBe(a);
    expect(validateDnsLabel(a)).toBeUndefined();
  });

  it("throws when nothing usable remains", () => {
    expect(() => toDnsLabel("")).toThrow(/no letters or digits/);
    expect(() => toDnsLabel("_:/ ")).toThrow(/cannot make a DNS label/);
  });

  it("always yields a valid DNS label (property)", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200, unit: "binary" }), (s) => {
        let label: string;
        try {
          label = toDnsLabel(s);
        } catch {
          // Only inputs without any ASCII letter or digit may be refused.
          expect(s.normalize("NFKD")).not.toMatch(/[A-Za-z0-9]/);
          return;
        }
        expect(validateDnsLabel(label)).toBeUndefined();
      }),
    );
  });
});

describe("envVarName", () => {
  it("upper-cases and collapses non-alphanumeric runs", () => {
    expect(envVarName("cluster2-default-pod-lister")).toBe("MCSA_CLUSTER2_DEFAULT_POD_LISTER_URL");
    expect(envVarName("a.b--c")).toBe("MCSA_A_B_C_URL");
  });
});

describe("secretVolumeName", () => {
  it("uses mcsa-<import> when that is a valid label", () => {
    expect(secretVolumeName("cluster2-default-pod-lister")).toBe("mcsa-cluster2-default-pod-lister");
  });

  it("keeps imports that differ only by dots apart", () => {
    const dotted = secretVolumeName("a.b");
    expect(validateDnsLabel(dotted)).toBeUndefined();
    expect(dotted).toMatch(/^mcsa-a-b-[0-9a-f]{8}$/);
    expect(dotted).not.toBe(secretVolumeName("a-b"));
  });

  it("truncates long names to 63 with a distinguishing hash", () => {
    const long = "x".repeat(100);
    const v1 = secretVolumeName(`${long}1`);
    const v2 = secretVolumeName(`${long}2`);
    expect(v1.length).toBeLessThanOrEqual(63);
    expect(validateDnsLabel(v1)).toBeUndefined();
    expect(v1).not.toBe(v2);
    expect(secretVolumeName(`${long}1`)).toBe(v1);
  });
});
