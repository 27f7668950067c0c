# want: 4:11 "ssh" is not a port
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["ssh"]
}
