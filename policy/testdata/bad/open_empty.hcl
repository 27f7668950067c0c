# want: 4:10 A door must open something
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = []
}
