"""Time to the first text piece over TLS and a real round trip: ipychat against
the openai SDK with one kept ``AsyncOpenAI`` client, side by side.

A TLS chat server on 127.0.0.1 (a self-signed certificate made for the run,
trusted by both clients through ``SSL_CERT_FILE``) sits behind a proxy that
adds a round trip (``bench.rttproxy``, in its own process). A session is one
event loop asking eight questions in a row: the first (cold) opens a
connection, the others show whether the client kept it. Sessions take turns
between the clients, at each round trip time; the proxy counts the
connections each session opened.

    python -m bench.connections [--smoke] [--repeats 7] [--questions 8] [--rtt 20,50,100]
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import common, payload

CHUNKS = 20  # a short answer: what is timed is its first piece
MESSAGES = [{"role": "user", "content": "hi"}]
MODEL = "gpt-3.5-turbo"
IPYCHAT, SDK = "ipychat (openai provider)", "openai SDK, one AsyncOpenAI kept"


# -- certificate and server --------------------------------------------------------


def make_certificate(folder: Path) -> tuple:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert path, key path)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        _with_cryptography(cert, key)
    except ImportError:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext",
                        "subjectAltName=IP:127.0.0.1,DNS:localhost",
                        "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True)
    return cert, key


def _with_cryptography(cert: Path, key: Path) -> None:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(private.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=2))
                   .add_extension(x509.SubjectAlternativeName(names), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(private, hashes.SHA256()))
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))


class ProxiedServer:
    """``bench.rttproxy`` in a subprocess: ``url`` goes through the proxy."""

    def __init__(self, cert: Path, key: Path):
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.rttproxy", str(cert), str(key),
                                      str(CHUNKS)], cwd=common.REPO, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        ports = json.loads(self.proc.stdout.readline())
        self.url = f"https://127.0.0.1:{ports['proxy']}/v1"

    def command(self, line: str) -> dict:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        common.end_process(self.proc)


# -- the two clients ---------------------------------------------------------------


async def ipychat_session(url: str, questions: int) -> list:
    """(seconds to the first text, text) per question, on this loop's kept connections."""
    from ipychat.providers import OpenAIChat

    found = []
    for _ in range(questions):
        started, first, parts = time.perf_counter(), None, []
        async for text in OpenAIChat.create_async_generator(MODEL, MESSAGES, base_url=url,
                                                            api_key="bench"):
            first = first or time.perf_counter()
            parts.append(text)
        found.append((first - started, "".join(parts)))
    return found


async def sdk_session(url: str, questions: int) -> list:
    """The same through one ``AsyncOpenAI`` client, made before the first question."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=url, api_key="bench", max_retries=0)
    found = []
    try:
        for _ in range(questions):
            started, first, parts = time.perf_counter(), None, []
            stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES,
                                                          stream=True)
            async with stream:
                async for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        first = first or time.perf_counter()
                        parts.append(chunk.choices[0].delta.content)
            found.append((first - started, "".join(parts)))
    finally:
        await client.close()
    return found


CLIENTS = {IPYCHAT: ipychat_session, SDK: sdk_session}


def session(server: ProxiedServer, name: str, questions: int) -> dict:
    """One fresh event loop asking ``questions`` in a row; every answer checked."""
    server.command("count")  # reset the proxy's counter
    found = asyncio.run(CLIENTS[name](server.url, questions))
    if any(text != payload.answer(CHUNKS) for _, text in found):
        raise AssertionError(f"{name} decoded a wrong answer")
    return {"first_text_s": [seconds for seconds, _ in found],
            "connections": server.command("count")["connections"]}


# -- measuring and reporting --------------------------------------------------------


def measure(server: ProxiedServer, rtts: list, questions: int, repeats: int) -> dict:
    runs = {}
    for rtt in rtts:
        server.command(f"rtt {rtt}")
        for name in CLIENTS:  # untimed warm-up: imports, first TLS context
            session(server, name, 1)
        runs[rtt] = common.interleaved(
            {name: name for name in CLIENTS}, repeats,
            lambda name, _: session(server, name, questions))
    return runs


def row(rtt: float, name: str, sessions: list) -> dict:
    cold = [s["first_text_s"][0] for s in sessions]
    warm = [t for s in sessions for t in s["first_text_s"][1:]]
    return {"rtt_ms": rtt, "client": name, "cold_ms": common.median(cold) * 1000,
            "warm_ms": common.median(warm) * 1000,
            "connections": max(s["connections"] for s in sessions), "sessions": sessions}


def rows_from(runs: dict) -> list:
    rows = []
    for rtt, by_client in runs.items():
        pair = [row(rtt, name, by_client[name]) for name in CLIENTS]
        sdk = pair[1]
        for found in pair:
            found["warm_vs_sdk"] = found["warm_ms"] / sdk["warm_ms"]
            found["cold_vs_sdk"] = found["cold_ms"] / sdk["cold_ms"]
        rows += pair
    return rows


def targets_from(rows: list, questions: int) -> list:
    found = []
    for r in rows:
        if r["client"] != IPYCHAT:
            continue
        rtt = f"{r['rtt_ms']:g} ms RTT"
        found.append(common.target(f"first text after the first question vs the SDK, {rtt}",
                                   r["warm_vs_sdk"], "<=", 1.1, "x"))
        found.append(common.target(f"connections opened for {questions} questions, {rtt}",
                                   r["connections"], "<=", 1))
    return found


def main(argv=None) -> int:
    cli = common.parser(__doc__.splitlines()[0], repeats=7)
    cli.add_argument("--questions", type=int, default=None, help="questions per session (8)")
    cli.add_argument("--rtt", default=None, help="round trip times in ms (20,50,100)")
    args = common.parse(cli, argv)
    questions = args.questions or (2 if args.smoke else 8)
    rtts = [float(ms) for ms in (args.rtt or ("20" if args.smoke else "20,50,100")).split(",")]
    with tempfile.TemporaryDirectory() as folder:
        cert, key = make_certificate(Path(folder))
        # Both clients read it when they make their TLS context: aiohttp at import.
        os.environ["SSL_CERT_FILE"] = str(cert)
        server = ProxiedServer(cert, key)
        try:
            runs = measure(server, rtts, questions, args.repeats)
        finally:
            server.close()
    rows = rows_from(runs)
    params = {"rtt_ms": rtts, "questions": questions, "chunks": CHUNKS,
              "server": "subprocess (bench.rttproxy): aiohttp over TLS behind a delaying proxy",
              "versions": common.versions("aiohttp", "openai", "httpx", "httpx2")}
    common.report("connections", args, params, rows,
                  ["rtt_ms", "client", "cold_ms", "warm_ms", "connections", "warm_vs_sdk",
                   "cold_vs_sdk"], targets_from(rows, questions))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
