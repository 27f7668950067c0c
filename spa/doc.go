// Package spa implements single packet authorization compatible with
// fwknop 2.6 (the `fwknop` command line client and the phone apps): key
// files, a verifier for incoming packets, an encoder for `sesame knock
// --spa`, and a persistent replay cache. It is pure: no sockets, no
// goroutines, no wall clock (every time-dependent call takes `now`).
//
// # Wire format (verified against Debian's fwknop-client 2.6.10)
//
// The UDP payload (default port 62201) is the SPA string itself, 140–1500
// bytes of [A-Za-z0-9+/=], no newline. It is B64CT ‖ B64HMAC, with no
// separator:
//
//   - B64CT is standard base64 of "Salted__" ‖ salt(8) ‖ AES ciphertext,
//     '=' padding stripped and the constant first 10 characters
//     "U2FsdGVkX1" dropped. Its first character is therefore always one of
//     "89+/" (the low bits of the last '_' plus two salt bits).
//   - B64HMAC is base64 (no '=') of the HMAC over the ASCII text
//     "U2FsdGVkX1" + B64CT (prefix put back). Its length depends on the
//     digest: md5 22, sha1 27, sha256 43, sha384 64, sha512 86, sha3_256 43,
//     sha3_512 86. The digest type is not on the wire: it is configured per
//     key (sha256 is fwknop's default).
//
// Key and IV come from OpenSSL's EVP_BytesToKey with MD5 and one iteration
// (D1 = MD5(pass ‖ salt), Di = MD5(Di-1 ‖ pass ‖ salt); key = 32 bytes, IV =
// the next 16), always AES-256-CBC whatever the passphrase length (1–32
// bytes). Padding is PKCS#7, removed leniently: only when the last v ≤ 16
// bytes all equal v (some Android clients send none).
//
// The plaintext is printable ASCII, fields separated by ':' (6–9 colons):
//
//	RAND:B64(user):TS:VERSION:TYPE:B64(msg)[:B64(nat)][:B64(server_auth)][:TIMEOUT]:DIGEST
//
// RAND is 16 decimal digits, TS unix seconds, VERSION free text ("3.0.0"),
// TYPE 0 command, 1 access, 2 NAT access, 3 access with client timeout, 4
// NAT with timeout, 5 local NAT, 6 local NAT with timeout. msg is
// "ADDR,proto/port[,proto/port...]" (proto tcp, udp, icmp or none); the
// address 0.0.0.0 means "the packet's source" (client -s). TIMEOUT is
// present for types 3, 4 and 6 only. DIGEST is base64 (no '=') of a hash of
// everything before ":DIGEST"; the hash is inferred from its length (43 and
// 86 characters: SHA-2 is tried, then SHA-3). Base64 fields inside the
// plaintext carry no '=' padding.
//
// # What the Verifier does
//
// Verify checks, in this order, so that a garbage packet costs at most one
// HMAC: length and charset (a leading "hQ" is fwknop's GPG mode: refused),
// the HMAC (mandatory, constant-time), the replay cache (if configured),
// base64, decryption, the plaintext fields, the inner digest, the message
// type (only 1 and 3 are accepted; 0 command, NAT types 2, 4, 5, 6 are
// refused and never acted on), and the timestamp window (±MaxAge, 120 s by
// default, as fwknopd's MAX_SPA_PACKET_AGE). Every refusal is an *Error
// carrying a Reason, for logging as reason=.
//
// fwknop's legacy IV mode exists only without HMAC, and an HMAC is
// mandatory here, so legacy packets are refused as bad-hmac; so are packets
// sent without any HMAC.
//
// # IPv6: an extension
//
// The fwknop 2.6 client is IPv4-only and writes an IPv4 address in msg.
// sesame also accepts (and `sesame knock --spa` writes) an IPv6 address
// there, e.g. "2001:db8::7,tcp/22": the message is base64-encoded inside
// the plaintext, so its colons do not disturb the field layout. "::" means
// the packet's source, as 0.0.0.0 does. Real fwknop servers reject such
// packets.
//
// # Replay
//
// The replay key is the SHA-256 of the wire string as received (fwknopd
// uses the same digest). It is looked up after the HMAC check and inserted
// once the packet decrypted and decoded with a valid digest. Because the
// age window is enforced, an entry can be dropped 2×MaxAge after it was
// added: by then the packet is too old anyway. The cache is bounded and can
// be saved to and loaded from a file so that a restart does not re-open a
// replay window.
package spa
