# want: 3:21 may not be null
door "ssh" {
  sequence = [7000, null, 9000]
  open = ["22/tcp"]
}
