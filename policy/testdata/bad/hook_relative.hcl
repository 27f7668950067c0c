# want: 4:14 must be an absolute path
door "ssh" {
  sequence = ["7000", "8000", "9000"]
  on_open = ["logger", "{ip}"]
  open = ["22/tcp"]
}
