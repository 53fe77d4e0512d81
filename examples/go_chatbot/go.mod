module example.com/go_chatbot

go 1.22
