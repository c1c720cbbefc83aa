"""Harness for the interop tests: drives the `zhangban` CLI in a tmp_path.

The binary comes from $ZHANGBAN_BIN (default: <repo>/target/debug/zhangban);
build it with `cargo build -p zhangban-core --features cli --bin zhangban`.

The Python reference implementation (PyPI `sd-jwt` 0.10.4) runs with its
default settings: holder keys are P-256 and key binding JWTs ES256, which is
its default algorithm (issue 11); issuers stay Ed25519, passed as keys.
"""

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

TYPE_CODE = "11100000000013338W050"
ISSUER_CODE = "11511600MB1590032T"
ISSUER_ID = f"urn:zhangban:issuer:{ISSUER_CODE}"
ISSUER_NAME = "广安市市场监督管理局"
VCT = f"urn:zhangban:licence-type:{TYPE_CODE}"
STATUS_URI = f"https://zhangban.example/status/{ISSUER_CODE}/1"
STATUS_IDX = 42
AUD = "inspection"

# Always-visible claims of our licences (not selectively disclosable).
VISIBLE = {"iss", "iat", "nbf", "exp", "vct", "cnf", "status"}


def mod37_36_check(data: str) -> str:
    """ISO/IEC 7064 MOD 37,36 check character (GB/T 17710), written from the standard."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    m = 36
    p = m
    for c in data:
        s = (p + alphabet.index(c)) % m or m
        p = (s * 2) % (m + 1)
    return alphabet[(m + 1 - p) % m]


def licence_id(type_code: str, issuer_code: str, serial: str, version: int = 1) -> str:
    """A GB/T 36904 licence identifier with its check character."""
    v = f"{version:03d}"
    check = mod37_36_check(f"{type_code}{issuer_code}{serial}{v}")
    return f"1.2.156.3005.2.{type_code}.{issuer_code}.{serial}.{v}.{check}"


CLAIMS = {
    "licence_name": "营业执照",
    "licence_type_code": TYPE_CODE,
    "licence_number": "91511602MA60000042",
    "licence_id": licence_id(TYPE_CODE, ISSUER_CODE, "2026000042"),
    "issuer_name": ISSUER_NAME,
    "issuer_code": ISSUER_CODE,
    "holder_name": "广安市示例商贸有限公司",
    "legal_representative": "张三",
    "valid_from": "2026-01-01",
    "valid_until": "2045-12-31",
}


def zhangban_bin() -> Path:
    path = Path(os.environ.get("ZHANGBAN_BIN", REPO / "target" / "debug" / "zhangban"))
    if not path.is_absolute():
        path = REPO / path
    if not path.is_file():
        pytest.fail(
            f"zhangban binary not found at {path}: run "
            "`cargo build -p zhangban-core --features cli --bin zhangban` "
            "or set ZHANGBAN_BIN"
        )
    return path


@dataclass
class Cli:
    """Runs the zhangban binary in a working directory."""

    bin: Path
    dir: Path

    def run(self, *args, expect=0, stdin=None):
        proc = subprocess.run(
            [str(self.bin), *map(str, args)],
            cwd=self.dir,
            input=stdin,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60,
        )
        assert proc.returncode == expect, (
            f"zhangban {' '.join(map(str, args))}: exit {proc.returncode}, expected {expect}\n"
            f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
        return proc

    def keygen(self, name: str, *extra) -> dict:
        """A key pair in NAME.json / NAME.pub.json; returns the public JWK."""
        self.run("keygen", "--out", f"{name}.json", "--public-out", f"{name}.pub.json",
                 *extra)
        return json.loads((self.dir / f"{name}.pub.json").read_text())

    def sign_bundle(self, issuers: list, out: str, version: int = 1, iat=None) -> str:
        spec = self.dir / f"{out}.issuers.json"
        spec.write_text(json.dumps(issuers, ensure_ascii=False), encoding="utf-8")
        args = ["bundle", "sign", "--root", "root.json", "--issuers", spec, "--version", version]
        if iat is not None:
            args += ["--iat", iat]
        self.run(*args, "--out", out)
        return (self.dir / out).read_text().strip()

    def status_list(self, key: str, uri: str, out: str, *, iat, revoked=(), size=1024) -> str:
        args = ["status-list", "build", "--issuer-key", key, "--uri", uri, "--size", size]
        args += ["--iat", iat, "--exp", iat + 86400, "--out", out]
        if revoked:
            args += ["--revoked", ",".join(map(str, revoked))]
        self.run(*args)
        return (self.dir / out).read_text().strip()

    def verify(self, presentation: str, *policy, status=("status.jwt",), bundle="bundle.jws",
               now=None, expect=0) -> dict:
        """Runs `zhangban verify` on a presentation (via stdin) and returns the verdict JSON."""
        args = ["verify", "--root-pub", "root.pub.json", "--bundle", bundle]
        for s in status:
            args += ["--status", s]
        if now is not None:
            args += ["--now", now]
        proc = self.run(*args, *policy, "-", expect=expect, stdin=presentation)
        return json.loads(proc.stdout)


def issuer_entry(*, id, name, code, jwk, vct, status_uri, now) -> dict:
    """One issuer of the trust bundle input (`kid` left for the CLI to compute)."""
    return {
        "id": id,
        "name": name,
        "code": code,
        "licence_types": [vct],
        "status_lists": [status_uri],
        "keys": [{
            "jwk": {k: jwk[k] for k in ("kty", "crv", "x")},
            "not_before": now - 365 * 86400,
            "not_after": now + 5 * 365 * 86400,
        }],
    }


@dataclass
class World:
    """Our side, made with our CLI: root, issuer and holder keys, a trust
    bundle, a status list and one issued licence (CLAIMS, index STATUS_IDX)."""

    cli: Cli
    now: int
    root_pub: dict
    issuer_pub: dict
    holder_pub: dict
    licence: str
    bundle: str
    status: str

    def present(self, fields, *, nonce=None, aud=AUD, bind=True) -> str:
        args = ["present", "--licence", "licence.txt", "--disclose", ",".join(fields)]
        if bind:
            args += ["--holder-key", "holder.json", "--aud", aud, "--now", self.now]
            if nonce is not None:
                args += ["--nonce", nonce]
        out = self.cli.run(*args).stdout
        assert out.endswith("\n") and not out.endswith("\n\n")
        return out.strip()


@pytest.fixture
def cli(tmp_path) -> Cli:
    return Cli(zhangban_bin(), tmp_path)


@pytest.fixture
def world(cli) -> World:
    # The reference holder stamps its key binding JWT with the real clock,
    # so every test world lives at the real "now".
    now = int(time.time())
    root_pub = cli.keygen("root")
    issuer_pub = cli.keygen("issuer")
    holder_pub = cli.keygen("holder", "--p256")
    bundle = cli.sign_bundle(
        [issuer_entry(id=ISSUER_ID, name=ISSUER_NAME, code=ISSUER_CODE, jwk=issuer_pub,
                      vct=VCT, status_uri=STATUS_URI, now=now)],
        "bundle.jws",
        iat=now,
    )
    status = cli.status_list("issuer.json", STATUS_URI, "status.jwt", iat=now,
                             revoked=(1, 5))
    (cli.dir / "claims.json").write_text(json.dumps(CLAIMS, ensure_ascii=False),
                                         encoding="utf-8")
    cli.run("issue", "--issuer-key", "issuer.json", "--issuer-id", ISSUER_ID,
            "--claims", "claims.json", "--holder", "holder.pub.json",
            "--status-uri", STATUS_URI, "--status-idx", STATUS_IDX,
            "--now", now, "--out", "licence.txt")
    licence = (cli.dir / "licence.txt").read_text().strip()
    return World(cli, now, root_pub, issuer_pub, holder_pub, licence, bundle, status)
