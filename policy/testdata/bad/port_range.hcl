# want: 3:23 port 70000 is out of range
door "ssh" {
  sequence = ["7000", "70000/tcp", "9000"]
  open = ["22/tcp"]
}
