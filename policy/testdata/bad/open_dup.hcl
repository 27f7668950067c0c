# want: 4:24 22/tcp is already listed at
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22", "443", "22/tcp"]
}
