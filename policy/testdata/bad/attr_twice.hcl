# want: 3:1 Attribute redefined
table = "a"
table = "b"
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
}
