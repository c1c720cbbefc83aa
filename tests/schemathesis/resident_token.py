"""Enrols a fresh device with the demo activation code and prints a resident
bearer token: the Ed25519 challenge-signing flow of /v1/auth/*, done with the
`cryptography` package (a dependency of jwcrypto) and the standard library.

usage: resident_token.py BASE_URL ACTIVATION_CODE
"""
import base64
import json
import sys
import urllib.request

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def post(base: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


def main() -> None:
    base, code = sys.argv[1].rstrip("/"), sys.argv[2]
    key = Ed25519PrivateKey.generate()
    x = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64u(x)}
    device = post(base, "/v1/devices/enrol", {"activation_code": code, "device_jwk": jwk})["device_id"]
    ch = post(base, "/v1/auth/challenge", {"device_id": device})
    message = f"zhangban-auth-v1.{ch['challenge_id']}.{ch['nonce']}".encode()
    tok = post(
        base,
        "/v1/auth/token",
        {"device_id": device, "challenge_id": ch["challenge_id"], "signature": b64u(key.sign(message))},
    )
    print(tok["token"])


if __name__ == "__main__":
    main()
