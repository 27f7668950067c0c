# want: 2:15 contains '/'
interfaces = ["eth/0"]
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
}
