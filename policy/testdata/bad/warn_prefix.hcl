# want: 8:14 so knocking door "web" also opens door "ssh"
# severity: warning
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
}
door "web" {
  sequence = [7000, "8000/udp", 9000, 9100]
  open = [443]
}
