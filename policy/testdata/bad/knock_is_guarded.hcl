# want: 3:21 is opened by door "web"
door "ssh" {
  sequence = [7000, 443, 9000]
  open = ["22/tcp"]
}
door "web" {
  sequence = [1001, 1002, 1003]
  open = [443]
}
