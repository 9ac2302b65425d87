<?php
// A second implementation of the circuit breaker's client, in PHP, written from
// docs/breaker-protocol.md (version 1) alone: it loads the same script files as the Python
// client, speaks RESP to Redis over a socket (no extension needed), and shares circuits with
// Python processes. The decisions are the scripts'; this file only assembles and calls them.

declare(strict_types=1);

final class RedisConnection
{
    /** @var resource */
    private $socket;

    public function __construct(string $host, int $port)
    {
        $socket = stream_socket_client("tcp://$host:$port", $errno, $error, 5.0);
        if ($socket === false) {
            throw new RuntimeException("redis: $error");
        }
        $this->socket = $socket;
    }

    /** @param list<string|int> $args */
    public function command(array $args): mixed
    {
        $request = '*' . count($args) . "\r\n";
        foreach ($args as $arg) {
            $arg = (string) $arg;
            $request .= '$' . strlen($arg) . "\r\n" . $arg . "\r\n";
        }
        fwrite($this->socket, $request);
        return $this->reply();
    }

    private function reply(): mixed
    {
        $line = fgets($this->socket);
        if ($line === false) {
            throw new RuntimeException('redis: connection lost');
        }
        $type = $line[0];
        $body = substr($line, 1, -2);
        switch ($type) {
            case '+':
                return $body;
            case '-':
                throw new RuntimeException("redis: $body");
            case ':':
                return (int) $body;
            case '$':
                if ((int) $body < 0) {
                    return null;
                }
                $data = stream_get_contents($this->socket, (int) $body + 2);
                return substr($data, 0, -2);
            case '*':
                $items = [];
                for ($i = 0; $i < (int) $body; $i++) {
                    $items[] = $this->reply();
                }
                return $items;
        }
        throw new RuntimeException("redis: unexpected reply $line");
    }
}

final class CircuitOpenException extends RuntimeException
{
}

final class CircuitBreaker
{
    public const STATES = ['closed', 'open', 'half_open', 'forced_open', 'forced_closed', 'disabled'];
    // docs/breaker-protocol.md, "Scripts": the bounds written into every script
    private const CONSTANTS = [
        'EVENTS_KEPT_LAST' => '49',
        'UNKNOWN_CODE' => '9',
        'MAX_GENERATION' => '1000000000000',
        'MAX_COUNT_WINDOW' => '1000',
        'MAX_TIME_WINDOW' => '600',
        'MAX_COUNT' => '2147483647',
        'MAX_TIME_MS' => '10000000000000',
        'MAX_MINIMUM_CALLS' => '1000000',
        'MAX_SLOW_CALL_MS' => '86400000',
        'MAX_GROWTH_PERCENT' => '1000',
    ];
    private const UNKNOWN = 9;

    private int $generation = 0;

    /**
     * @param array{failure_threshold: int, success_threshold: int, cooldown_ms: int} $rules
     */
    public function __construct(
        private RedisConnection $redis,
        private string $scripts,
        private string $key,
        private array $rules,
        private int $leaseMs = 11000,
    ) {
    }

    /** Run $call through the circuit: refused fast when open, its outcome counted otherwise. */
    public function call(callable $call): mixed
    {
        [$code, , $generation, , , , , , $probe] = $this->acquire();
        if ($code === 0) {
            throw new CircuitOpenException("circuit {$this->key} is open");
        }
        try {
            $result = $call();
        } catch (Throwable $error) {
            $this->record($generation, 0, $probe);
            throw $error;
        }
        $this->record($generation, 1, $probe);
        return $result;
    }

    /** @return list<int|string> the reply's ten fields */
    public function acquire(): array
    {
        return $this->decide('acquire', [$this->leaseMs, $this->generation, gethostname(), getmypid(), $this->rules()]);
    }

    /** @return list<int|string> */
    public function record(int $generation, int $outcome, int $probeSeq, int $durationMs = 0): array
    {
        return $this->decide('record', [$generation, $outcome, $probeSeq, gethostname(), getmypid(), $this->rules(), $durationMs]);
    }

    /** An operator's action: move the circuit to $target (3 trip, 0 reset, ...). @return list<int|string> */
    public function control(int $target, string $reason): array
    {
        return $this->decide('control', [$target, $reason, 'php', gethostname(), getmypid(), $this->generation, $this->rules()]);
    }

    /** The circuit's state as stored (field `st`), by name; null when it has no hash. */
    public function state(): ?string
    {
        $state = $this->redis->command(['HGET', "guard:breaker:{{$this->key}}", 'st']);
        return $state === null ? null : self::STATES[(int) $state];
    }

    /** @param list<string|int> $args @return list<int|string> */
    private function decide(string $script, array $args): array
    {
        $reply = $this->run($script, $args);
        if ($reply[0] === self::UNKNOWN) {  // no hash: seed it closed at the generation we knew
            $this->run('seed', [0, $this->generation, 0, '', gethostname(), getmypid()]);
            $reply = $this->run($script, $args);
        }
        $this->generation = (int) $reply[2];
        return $reply;
    }

    /** @param list<string|int> $args @return list<int|string> */
    private function run(string $script, array $args): array
    {
        $keys = ["guard:breaker:{{$this->key}}", "guard:breaker:{{$this->key}}:events"];
        $answer = $this->redis->command(['EVAL', $this->source($script), 2, ...$keys, ...$args]);
        if (!is_string($answer)) {
            return [(int) $answer];
        }
        return array_map(fn ($f) => is_numeric($f) ? (int) $f : $f, explode(',', $answer));
    }

    private function source(string $script): string
    {
        $read = fn (string $name) => file_get_contents("{$this->scripts}/$name.lua");
        $source = match ($script) {
            'acquire' => $read('prelude') . $read('acquire'),
            'record' => $read('record_fast') . $read('prelude') . $read('record'),
            'control' => $read('prelude') . $read('control'),
            'seed' => $read('seed'),
        };
        $source = strtr($source, self::CONSTANTS);  // strtr tries the longest name first
        return str_replace('CLOCK_FUNCTION', $read('redis_clock'), $source);
    }

    private function rules(): string
    {
        // failure threshold, success threshold, cooldown ms, no window, no growth
        return implode(',', [$this->rules['failure_threshold'], $this->rules['success_threshold'], $this->rules['cooldown_ms'], 0, 0, 0, 0, 0, 0, 0, 0]);
    }
}
