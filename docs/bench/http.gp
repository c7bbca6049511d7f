if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
    set terminal pngcairo size 900,560
} else {
    set terminal png size 900,560
}
set output 'docs/bench/http.png'
set title 'http, server-bound (server capped at 25% of a core): throughput (req/s, median, bars min-max)'
set xlabel 'connections'
set ylabel 'requests/s'
set logscale x
set grid
set key top left
set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05
plot 'docs/bench/http.dat' index 0 using 1:2:3:4 with yerrorlines lw 2 title 'gyre-select', \
     'docs/bench/http.dat' index 1 using 1:2:3:4 with yerrorlines lw 2 title 'gyre-poll', \
     'docs/bench/http.dat' index 2 using 1:2:3:4 with yerrorlines lw 2 title 'gyre-epoll', \
     'docs/bench/http.dat' index 3 using 1:2:3:4 with yerrorlines lw 2 title 'gyre-uring', \
     'docs/bench/http.dat' index 4 using 1:2:3:4 with yerrorlines lw 2 title 'nginx'
