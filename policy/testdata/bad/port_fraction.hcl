# want: 3:21 1.5 is not a port
door "ssh" {
  sequence = [7000, 1.5, 9000]
  open = ["22/tcp"]
}
