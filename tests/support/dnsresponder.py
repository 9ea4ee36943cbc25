"""A nameserver for tests: answers every A question over UDP with one address, any other type
with no record (dnslib is not installed here). `python tests/support/dnsresponder.py ADDRESS PORT ANSWER` serves until killed."""
import socket
import struct
import sys


def answer(query: bytes, address: str) -> bytes:
    """The reply to `query`: its id and question, and for an A question one record (TTL 60)
    pointing at `address`."""
    end = 12
    while query[end]:  # the question's name: length-prefixed labels up to a zero byte
        end += 1 + query[end]
    question = query[12:end + 5]  # the name, its zero byte, type and class
    is_a = struct.unpack(">H", question[-4:-2])[0] == 1
    flags = 0x8180  # a response, recursion desired and available, no error
    header = query[:2] + struct.pack(">HHHHH", flags, 1, int(is_a), 0, 0)
    record = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(address)
    return header + question + (record if is_a else b"")


def serve(bind: str, port: int, address: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind((bind, port))
        while True:
            query, client = server.recvfrom(512)
            try:
                server.sendto(answer(query, address), client)
            except (IndexError, OSError):
                continue  # not a question this understands


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), sys.argv[3])
