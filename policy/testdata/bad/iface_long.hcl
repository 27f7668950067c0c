# want: 2:23 1 to 15 bytes
interfaces = ["eth0", "abcdefghijklmnop"]
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
}
