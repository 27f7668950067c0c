# want: 3:27 a guarded service port cannot be a knock port
door "ssh" {
  sequence = [7000, 8000, "22/tcp"]
  open = ["22/tcp"]
}
