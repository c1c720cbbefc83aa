"""Interop: our licences in independent implementations, and theirs in ours.

- the SD-JWT reference implementation (PyPI `sd-jwt` 0.10.4) verifies what
  we issue and present, and rejects what we tampered with;
- our verifier accepts what the reference implementation issues and
  presents, and refuses it when the trust bundle does not authorize it;
- jwcrypto verifies the signatures of our issuer JWT, trust bundle and
  status list token.
"""

from datetime import datetime, timedelta, timezone
import base64
import json
import secrets
import time
import zlib

import pytest
from jwcrypto.common import base64url_decode, base64url_encode
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS, InvalidJWSSignature
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.issuer import SDJWTIssuer
from sd_jwt.verifier import SDJWTVerifier

from conftest import (
    AUD,
    CLAIMS,
    ISSUER_ID,
    STATUS_IDX,
    STATUS_URI,
    VCT,
    VISIBLE,
    issuer_entry,
    licence_id,
)

FIELDS = ["licence_name", "licence_number", "holder_name", "legal_representative",
          "valid_until"]


def b64url_json(value) -> str:
    raw = json.dumps(value, ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_disclosure(text: str):
    return json.loads(base64url_decode(text).decode("utf-8"))


def issuer_key_callback(world):
    """The reference verifier's issuer key lookup: only our issuer, only by its
    RFC 7638 thumbprint (as jwcrypto computes it) in `kid`."""
    key = JWK(**world.issuer_pub)

    def lookup(iss, header):
        assert iss == ISSUER_ID
        assert header["kid"] == key.thumbprint()
        assert header["typ"] == "dc+sd-jwt"
        assert header["alg"] == "EdDSA"
        return key

    return lookup


# --------------------------------------------------------------------------
# 1. The reference verifier accepts our presentation with key binding.


def test_reference_verifier_accepts_our_presentation(world):
    nonce = secrets.token_urlsafe(16)
    pres = world.present(FIELDS, nonce=nonce)

    verifier = SDJWTVerifier(pres, issuer_key_callback(world), expected_aud=AUD,
                             expected_nonce=nonce)
    payload = verifier.get_verified_payload()

    disclosed = {k: v for k, v in payload.items() if k not in VISIBLE}
    assert disclosed == {f: CLAIMS[f] for f in FIELDS}
    assert disclosed["holder_name"] == "广安市示例商贸有限公司"
    assert disclosed["legal_representative"] == "张三"
    assert set(payload) == VISIBLE | set(FIELDS), "no _sd, _sd_alg or undisclosed field"
    assert payload["iss"] == ISSUER_ID
    assert payload["vct"] == VCT
    assert payload["iat"] == world.now
    assert payload["status"] == {"status_list": {"idx": STATUS_IDX, "uri": STATUS_URI}}
    holder = {k: world.holder_pub[k] for k in ("kty", "crv", "x", "y")}
    assert holder["kty"] == "EC" and holder["crv"] == "P-256"
    assert payload["cnf"] == {"jwk": holder}

    # Our own verifier agrees on the same presentation.
    ours = world.cli.verify(pres, "--nonce", nonce, now=world.now)
    assert ours["verdict"] == "valid"
    assert ours["claims"] == disclosed


def test_reference_verifier_accepts_every_field_and_the_unbound_form(world):
    every = world.present(["all"], bind=False)
    payload = SDJWTVerifier(every, issuer_key_callback(world)).get_verified_payload()
    assert {k: v for k, v in payload.items() if k not in VISIBLE} == CLAIMS


def test_reference_verifier_refuses_wrong_nonce_audience_or_issuer_key(world):
    nonce = secrets.token_urlsafe(16)
    pres = world.present(FIELDS, nonce=nonce)
    with pytest.raises(ValueError, match="nonce"):
        SDJWTVerifier(pres, issuer_key_callback(world), expected_aud=AUD,
                      expected_nonce="another-nonce")
    with pytest.raises(ValueError, match="audience"):
        SDJWTVerifier(pres, issuer_key_callback(world), expected_aud="someone-else",
                      expected_nonce=nonce)
    stranger = JWK.generate(kty="OKP", crv="Ed25519")
    with pytest.raises(InvalidJWSSignature):
        SDJWTVerifier(pres, lambda iss, header: stranger, expected_aud=AUD,
                      expected_nonce=nonce)


# --------------------------------------------------------------------------
# 2. Our verifier accepts a credential the reference implementation issued.

REF_CODE = "11511600MB0000017X"
REF_ID = f"urn:example:reference-issuer:{REF_CODE}"
REF_STATUS_URI = "https://reference.example/status/1"
REF_IDX = 7


def reference_world(cli, world, *, licence_types=(VCT,)):
    """A licence issued by sd-jwt's SDJWTIssuer with a jwcrypto Ed25519 key
    to a jwcrypto P-256 holder key,
    a trust bundle (ours, root-signed) listing that key, and a status list
    signed with it by our CLI."""
    issuer_key = JWK.generate(kty="OKP", crv="Ed25519")
    holder_key = JWK.generate(kty="EC", crv="P-256")
    private = json.loads(issuer_key.export_private())
    assert {"kty", "crv", "x", "d"} <= set(private)
    (cli.dir / "ref_issuer.json").write_text(json.dumps(private))
    (cli.dir / "ref_holder.pub.json").write_text(holder_key.export_public())

    entry = issuer_entry(id=REF_ID, name="参考实现发证机关", code=REF_CODE,
                         jwk=issuer_key.export_public(as_dict=True), vct=VCT,
                         status_uri=REF_STATUS_URI, now=world.now)
    entry["licence_types"] = list(licence_types)
    cli.sign_bundle([entry], "ref_bundle.jws", iat=world.now)
    cli.status_list("ref_issuer.json", REF_STATUS_URI, "ref_status.jwt", iat=world.now)

    claims = {
        "licence_name": "营业执照",
        "licence_type_code": CLAIMS["licence_type_code"],
        "licence_number": "91511602MA60000007",
        "licence_id": licence_id(CLAIMS["licence_type_code"], REF_CODE, "2026000007"),
        "issuer_code": REF_CODE,
        "holder_name": "广安市参考实现科技有限公司",
        "legal_representative": "李四",
        "valid_until": "2040-12-31",
    }
    user_claims = {
        "iss": REF_ID,
        "iat": world.now - 60,
        "nbf": world.now - 86400,
        # valid_until's last second in China Standard Time: a disclosed
        # validity must agree with `exp` (issue 13).
        "exp": int(datetime(2040, 12, 31, 23, 59, 59,
                            tzinfo=timezone(timedelta(hours=8))).timestamp()),
        "vct": VCT,
        "status": {"status_list": {"idx": REF_IDX, "uri": REF_STATUS_URI}},
        **{SDObj(name): value for name, value in claims.items()},
    }
    issued = SDJWTIssuer(
        user_claims,
        issuer_key,
        holder_key,
        sign_alg="EdDSA",
        add_decoy_claims=True,
        extra_header_parameters={"typ": "dc+sd-jwt", "kid": issuer_key.thumbprint()},
    ).sd_jwt_issuance
    return issued, claims, holder_key


def reference_presentation(issued, fields, holder_key, nonce):
    holder = SDJWTHolder(issued)
    # The reference's default key binding algorithm: ES256.
    holder.create_presentation({f: True for f in fields}, nonce, AUD, holder_key)
    return holder.sd_jwt_presentation


def test_our_verifier_accepts_a_reference_issued_and_presented_credential(cli, world):
    issued, claims, holder_key = reference_world(cli, world)
    fields = ["licence_name", "holder_name", "legal_representative", "licence_id",
              "issuer_code"]
    nonce = secrets.token_urlsafe(16)
    pres = reference_presentation(issued, fields, holder_key, nonce)
    assert pres.count("~") == len(fields) + 1

    # The reference holder stamps the KB-JWT with the real clock: verify now.
    verdict = cli.verify(pres, "--nonce", nonce, "--holder", "ref_holder.pub.json",
                         bundle="ref_bundle.jws", status=["ref_status.jwt"],
                         now=int(time.time()))
    assert verdict["verdict"] == "valid", verdict
    assert verdict["issuer"] == {"id": REF_ID, "name": "参考实现发证机关"}
    assert verdict["vct"] == VCT
    assert verdict["claims"] == {f: claims[f] for f in fields}
    assert verdict["claims"]["legal_representative"] == "李四"
    assert verdict["bound"] is True
    assert verdict["key_binding"]["nonce"] == nonce
    assert verdict["key_binding"]["aud"] == AUD
    assert verdict["status"] == {"uri": REF_STATUS_URI, "idx": REF_IDX}

    # The wrong nonce is refused by our verifier too.
    rejected = cli.verify(pres, "--nonce", "other", bundle="ref_bundle.jws",
                          status=["ref_status.jwt"], now=int(time.time()), expect=1)
    assert rejected["code"] == "kb_nonce_mismatch"

    # The issued form (every field, no key binding) in a wallet check.
    wallet = cli.verify(issued, "--no-kb", bundle="ref_bundle.jws",
                        status=["ref_status.jwt"], now=world.now)
    assert wallet["verdict"] == "valid"
    assert wallet["claims"] == claims
    assert wallet["bound"] is False


def test_our_verifier_refuses_a_reference_credential_of_an_unauthorized_type(cli, world):
    issued, _, holder_key = reference_world(
        cli, world, licence_types=["urn:zhangban:licence-type:11100000000013127D031"])
    nonce = secrets.token_urlsafe(16)
    pres = reference_presentation(issued, ["licence_name"], holder_key, nonce)
    verdict = cli.verify(pres, "--nonce", nonce, bundle="ref_bundle.jws",
                         status=["ref_status.jwt"], now=int(time.time()), expect=1)
    assert verdict["verdict"] == "rejected"
    assert verdict["code"] == "issuer_unauthorized_type"
    assert verdict["class"] == "untrusted_issuer"


def test_our_status_list_revokes_a_reference_credential(cli, world):
    issued, _, _ = reference_world(cli, world)
    cli.status_list("ref_issuer.json", REF_STATUS_URI, "ref_status.jwt", iat=world.now + 1,
                    revoked=[REF_IDX])
    verdict = cli.verify(issued, "--no-kb", bundle="ref_bundle.jws",
                         status=["ref_status.jwt"], now=world.now + 2, expect=1)
    assert verdict["code"] == "revoked"


# --------------------------------------------------------------------------
# 3. jwcrypto verifies our issuer JWT, trust bundle and status list token.


def flip_byte(token: str, segment: int, at: int) -> str:
    """`token` with one bit flipped in byte `at` of a decoded segment."""
    parts = token.split(".")
    raw = bytearray(base64url_decode(parts[segment]))
    raw[at % len(raw)] ^= 0x01
    parts[segment] = base64url_encode(bytes(raw))
    return ".".join(parts)


def signed_objects(world):
    return {
        "issuer JWT": (world.licence.split("~")[0], world.issuer_pub, "dc+sd-jwt"),
        "trust bundle": (world.bundle, world.root_pub, "trust-bundle+jwt"),
        "status list": (world.status, world.issuer_pub, "statuslist+jwt"),
    }


@pytest.mark.parametrize("name", ["issuer JWT", "trust bundle", "status list"])
def test_jwcrypto_verifies_our_signed_objects(world, name):
    token, pub, typ = signed_objects(world)[name]
    key = JWK(**pub)
    jws = JWS()
    jws.deserialize(token)
    jws.verify(key)  # raises on a bad signature
    header = jws.jose_header
    assert header["typ"] == typ
    assert header["alg"] == "EdDSA"
    assert header["kid"] == key.thumbprint()
    assert set(header) == {"typ", "alg", "kid"}
    json.loads(jws.payload)

    for segment in (1, 2):  # payload, signature
        for at in (0, 17, -1):
            forged = JWS()
            forged.deserialize(flip_byte(token, segment, at))
            with pytest.raises(InvalidJWSSignature):
                forged.verify(key)


def test_jwcrypto_verifies_our_es256_key_binding_jwt(world):
    """Our KB-JWT is a plain JWS: ES256, raw r||s, by the P-256 key in `cnf`;
    jwcrypto verifies it with that key (and refuses a flipped bit or
    another P-256 key)."""
    nonce = secrets.token_urlsafe(16)
    pres = world.present(FIELDS, nonce=nonce)
    kb = pres.rsplit("~", 1)[1]
    key = JWK(**world.holder_pub)
    jws = JWS()
    jws.deserialize(kb)
    jws.verify(key, alg="ES256")
    assert jws.jose_header == {"alg": "ES256", "typ": "kb+jwt"}
    assert len(base64url_decode(kb.split(".")[2])) == 64, "raw r||s, not DER"
    claims = json.loads(jws.payload)
    assert claims["nonce"] == nonce and claims["aud"] == AUD
    forged = JWS()
    forged.deserialize(flip_byte(kb, 1, 3))
    with pytest.raises(InvalidJWSSignature):
        forged.verify(key, alg="ES256")
    other = JWS()
    other.deserialize(kb)
    with pytest.raises(InvalidJWSSignature):
        other.verify(JWK.generate(kty="EC", crv="P-256"), alg="ES256")


def test_jwcrypto_reads_our_payloads_as_we_signed_them(world):
    objects = signed_objects(world)

    jws = JWS()
    jws.deserialize(objects["trust bundle"][0])
    jws.verify(JWK(**world.root_pub))
    bundle = json.loads(jws.payload)
    shown = json.loads(world.cli.run("bundle", "verify", "--root-pub", "root.pub.json",
                                     "bundle.jws").stdout)
    assert bundle == shown
    assert bundle["issuers"][0]["keys"][0]["kid"] == JWK(**world.issuer_pub).thumbprint()

    # The status list: 2 bits per licence, least significant bits first
    # (draft-ietf-oauth-status-list §4.1), zlib-compressed; 1 and 5 revoked.
    jws = JWS()
    jws.deserialize(objects["status list"][0])
    jws.verify(JWK(**world.issuer_pub))
    token = json.loads(jws.payload)
    assert token["sub"] == STATUS_URI
    assert token["status_list"]["bits"] == 2
    raw = zlib.decompress(base64url_decode(token["status_list"]["lst"]))
    assert len(raw) == 1024 * 2 // 8

    def status(i):
        return (raw[i * 2 // 8] >> (i * 2 % 8)) & 0b11

    assert [status(i) for i in range(8)] == [0, 1, 0, 0, 0, 1, 0, 0]
    assert status(STATUS_IDX) == 0

    # The issuer JWT: every licence field hidden behind a digest, padded with decoys.
    jws = JWS()
    jws.deserialize(objects["issuer JWT"][0])
    jws.verify(JWK(**world.issuer_pub))
    payload = json.loads(jws.payload)
    assert set(payload) == VISIBLE | {"_sd", "_sd_alg"}
    assert payload["_sd_alg"] == "sha-256"
    assert len(payload["_sd"]) == 12, "10 fields padded to a multiple of 4"
    assert payload["_sd"] == sorted(payload["_sd"])


# --------------------------------------------------------------------------
# 4. The reference verifier rejects a presentation whose disclosure we tampered with.


def forge(disclosure: str, value) -> str:
    salt, name, _ = decode_disclosure(disclosure)
    return b64url_json([salt, name, value])


def test_reference_verifier_rejects_a_tampered_disclosure(world):
    nonce = secrets.token_urlsafe(16)
    pres = world.present(FIELDS, nonce=nonce)
    parts = pres.split("~")
    i = next(n for n, d in enumerate(parts[1:-1], 1)
             if decode_disclosure(d)[1] == "legal_representative")
    parts[i] = forge(parts[i], "王五")
    tampered = "~".join(parts)

    # The key binding's sd_hash no longer matches.
    with pytest.raises(ValueError, match="digest"):
        SDJWTVerifier(tampered, issuer_key_callback(world), expected_aud=AUD,
                      expected_nonce=nonce)
    # Ours refuses it before looking at the key binding.
    verdict = world.cli.verify(tampered, "--nonce", nonce, now=world.now, expect=1)
    assert verdict["code"] == "disclosure_unreferenced"
    assert verdict["class"] == "forged"


def test_tampered_licence_presented_with_a_valid_key_binding(world):
    """The holder edits a disclosure in the stored licence and presents it
    with a genuine key binding over the edited presentation: only the
    issuer's digests can catch it."""
    parts = world.licence.split("~")
    i = next(n for n, d in enumerate(parts[1:-1], 1)
             if decode_disclosure(d)[1] == "holder_name")
    parts[i] = forge(parts[i], "冒名顶替有限公司")
    (world.cli.dir / "licence.txt").write_text("~".join(parts) + "\n", encoding="utf-8")
    nonce = secrets.token_urlsafe(16)
    pres = world.present(["licence_name", "holder_name"], nonce=nonce)

    # sd-jwt 0.10.4 does not reject an unreferenced disclosure (RFC 9901 §7.1
    # says it MUST); whatever it does, the forged value must never come out.
    try:
        payload = SDJWTVerifier(pres, issuer_key_callback(world), expected_aud=AUD,
                                expected_nonce=nonce).get_verified_payload()
    except ValueError:
        payload = None
    if payload is not None:
        assert "holder_name" not in payload
        assert "冒名顶替有限公司" not in json.dumps(payload, ensure_ascii=False)
        assert payload["licence_name"] == "营业执照"

    verdict = world.cli.verify(pres, "--nonce", nonce, now=world.now, expect=1)
    assert verdict["code"] == "disclosure_unreferenced"
