# want: 6:6 A door named "ssh" is already defined at
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
}
door "ssh" {
  sequence = [1001, 1002, 1003]
  open = [443]
}
