# want: 4:14 Empty forward
door "app" {
  sequence = ["7000/tcp", "8000/udp"]
  forward  = []
}
