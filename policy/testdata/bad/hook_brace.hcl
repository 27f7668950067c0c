# want: 4:33 a lone
door "ssh" {
  sequence = ["7000", "8000", "9000"]
  on_open = ["/usr/bin/logger", "{ip"]
  open = ["22/tcp"]
}
