# want: 4:33 "{user}" is not a placeholder
door "ssh" {
  sequence = ["7000", "8000", "9000"]
  on_open = ["/usr/bin/logger", "{user}"]
  open = ["22/tcp"]
}
