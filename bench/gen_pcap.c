/* gen_pcap: writes the capture the chain-cost and memory runs replay (raw IP, nanosecond
 * pcap, no libpcap needed).
 *
 *   gen_pcap OUT PACKETS FLOWS
 *
 * Flows alternate between TCP to 198.18.0.2:443 and UDP to 198.18.0.2:9000 from clients
 * 198.18.16.0-198.18.31.255, source ports from 1024. Packets go round-robin over the flows,
 * so every flow is live at once (the capture lasts PACKETS microseconds, well inside every
 * timeout) and the flow table holds FLOWS entries at the end. A TCP flow's packets are SYN,
 * SYN-ACK, ACK, then data both ways; a UDP flow's alternate request and reply. Only headers
 * are stored; the recorded wire length says 100 bytes of payload followed. */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAYLOAD 100

struct rec {
	uint32_t sec, nsec, caplen, len;
};

static uint16_t csum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: gen_pcap OUT PACKETS FLOWS\n");
		return 2;
	}
	unsigned long npkt = strtoul(argv[2], NULL, 10), nflow = strtoul(argv[3], NULL, 10);
	if (!npkt || !nflow || nflow > 4096ul * 60000ul) {
		fprintf(stderr, "gen_pcap: PACKETS >= 1, FLOWS 1-245760000\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "wb");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	/* pcap global header, nanosecond variant, LINKTYPE_RAW */
	uint32_t gh[6] = {0xa1b23c4d, 0x00040002, 0, 0, 65535, 101};
	fwrite(gh, sizeof(gh), 1, f);
	const uint32_t srv = 0xc6120002u, cli0 = 0xc6121000u; /* 198.18.0.2, 198.18.16.0 */
	uint64_t ts = 1700000000ull * 1000000000ull;
	for (unsigned long n = 0; n < npkt; n++, ts += 1000) {
		unsigned long fl = n % nflow, k = n / nflow;
		uint32_t cli = cli0 + (uint32_t)(fl % 4096);
		uint16_t cport = (uint16_t)(1024 + fl / 4096);
		bool tcp = !(fl & 1);
		bool from_cli = tcp ? (k != 1 && (k < 3 || (k & 1))) : !(k & 1);
		uint8_t pkt[60] = {0};
		unsigned l4 = tcp ? 20 : 8;
		unsigned hl = 20 + l4;
		unsigned tot = hl + (tcp && k < 3 ? 0 : PAYLOAD);
		pkt[0] = 0x45;
		pkt[2] = (uint8_t)(tot >> 8);
		pkt[3] = (uint8_t)tot;
		pkt[8] = 64;
		pkt[9] = tcp ? 6 : 17;
		uint32_t s = htonl(from_cli ? cli : srv), d = htonl(from_cli ? srv : cli);
		memcpy(pkt + 12, &s, 4);
		memcpy(pkt + 16, &d, 4);
		uint16_t c = htons(csum(pkt, 20));
		memcpy(pkt + 10, &c, 2);
		uint16_t sp = htons(from_cli ? cport : (tcp ? 443 : 9000));
		uint16_t dp = htons(from_cli ? (tcp ? 443 : 9000) : cport);
		memcpy(pkt + 20, &sp, 2);
		memcpy(pkt + 22, &dp, 2);
		if (tcp) {
			pkt[32] = 5 << 4;				/* data offset */
			pkt[33] = k == 0 ? 0x02 : k == 1 ? 0x12 : 0x18; /* SYN, SYN-ACK, ACK|PSH */
			pkt[34] = 0xff;					/* window */
		} else {
			uint16_t ul = htons((uint16_t)(tot - 20));
			memcpy(pkt + 24, &ul, 2);
		}
		struct rec r = {(uint32_t)(ts / 1000000000u), (uint32_t)(ts % 1000000000u), hl,
				tot};
		fwrite(&r, sizeof(r), 1, f);
		fwrite(pkt, hl, 1, f);
	}
	if (fclose(f) != 0) {
		perror(argv[1]);
		return 1;
	}
	return 0;
}
