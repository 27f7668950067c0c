# want: 3:21 0 is not a port
door "ssh" {
  sequence = [7000, 0, 9000]
  open = ["22/tcp"]
}
