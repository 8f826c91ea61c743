%% Erlang side of bench/dist.py: a sink, an echo gen_server-style server,
%% and the erl<->erl measurements. Compiled by bench/dist.py at run time.
-module(dist_peer).
-export([serve/0, bench/3]).

serve() ->
    register(sink, spawn(fun() -> sink(0) end)),
    register(echo, spawn(fun echo/0)),
    io:format("@@READY ~s~n", [node()]),
    receive stop -> ok end.

sink(N) ->
    receive
        {expect, K, From} -> sink_until(0, K, From);
        _ -> sink(N + 1)
    end.

sink_until(K, K, From) -> From ! {done, K}, sink(0);
sink_until(N, K, From) -> receive _ -> sink_until(N + 1, K, From) end.

echo() ->
    receive {'$gen_call', From, Req} -> gen_server:reply(From, Req), echo() end.

%% erl -> Target: one-way throughput of N small messages, then M calls.
bench(Target, N, M) ->
    true = net_kernel:connect_node(Target),
    {sink, Target} ! {expect, N, self()},
    T0 = erlang:monotonic_time(microsecond),
    [ {sink, Target} ! {msg, I} || I <- lists:seq(1, N) ],
    receive {done, N} -> ok end,
    T1 = erlang:monotonic_time(microsecond),
    [ gen_server:call({echo, Target}, ping) || _ <- lists:seq(1, 200) ],
    Samples = [ begin
                    S = erlang:monotonic_time(nanosecond),
                    ping = gen_server:call({echo, Target}, ping),
                    erlang:monotonic_time(nanosecond) - S
                end || _ <- lists:seq(1, M) ],
    Sorted = lists:sort(Samples),
    Median = lists:nth(M div 2, Sorted) / 1000,
    P99 = lists:nth(max(1, (M * 99) div 100), Sorted) / 1000,
    io:format("@@RESULT {\"msgs_per_s\": ~p, \"call_median_us\": ~p, \"call_p99_us\": ~p}~n",
              [N * 1000000 / (T1 - T0), Median, P99]).
