<?php
// The booking path of docs/booking-path.md, as a PHP application follows it: three statements,
// each its own transaction. The in-flight wait, the validation, the rollback and the review queue
// are PostgreSQL's; this class only calls the calendar in between.

declare(strict_types=1);

use Illuminate\Database\Capsule\Manager as Capsule;

final class BookingPath
{
    /**
     * @param callable(string): array{uid: string, starts_at?: string, ends_at?: string} $calendar
     * @return array<string, mixed>
     */
    public static function book(int $callId, int $serviceId, callable $calendar, float $waitSeconds = 5.0): array
    {
        $db = Capsule::connection();
        $begin = $db->selectOne(
            'SELECT outcome, idempotency_key, appointment_id, booking_uid'
            . ' FROM guard.begin_booking(?, ?, ?)',
            [$callId, $serviceId, $waitSeconds]
        );
        if ($begin->outcome !== 'started') {
            return ['outcome' => $begin->outcome, 'appointment_id' => $begin->appointment_id];
        }
        $key = $begin->idempotency_key;
        try {
            $booking = $calendar($key);
        } catch (Throwable $error) {
            $failed = $db->selectOne(
                "SELECT guard.fail_booking_attempt(?, 'calendar_booking_failure', ?::jsonb) AS item",
                [$key, json_encode(['error' => get_class($error), 'calendar_calls' => 1])]
            );
            return ['outcome' => 'failed', 'review_item_id' => $failed->item, 'reason' => get_class($error)];
        }
        return self::record($key, $booking);
    }

    /**
     * The reconciliation service (docs/booking-path.md, "When the database goes away"): every
     * attempt whose outcome is unknown (its process died between the calendar and step 3) is
     * settled by asking the calendar for its key: its booking is recorded, or, when the calendar
     * has none, the attempt fails and the call takes the rollback path. A lookup that throws
     * leaves the attempt to a person.
     * @param callable(string): ?array{uid: string} $lookup
     * @return array{recovered: int, failed: int, unsettled: int}
     */
    public static function recover(callable $lookup, ?int $olderThanSeconds = null): array
    {
        $db = Capsule::connection();
        $counts = ['recovered' => 0, 'failed' => 0, 'unsettled' => 0];
        $attempts = $db->select(
            'SELECT idempotency_key FROM guard.unsettled_booking_attempts(100, ?)', [$olderThanSeconds]
        );
        foreach ($attempts as $attempt) {
            try {
                $booking = $lookup($attempt->idempotency_key);
            } catch (Throwable) {
                $counts['unsettled']++;
                continue;
            }
            if ($booking === null) {
                $db->selectOne(
                    "SELECT guard.fail_booking_attempt(?, 'calendar_booking_failure', ?::jsonb)",
                    [$attempt->idempotency_key, json_encode(['found_by' => 'recover', 'calendar_booked' => false])]
                );
                $counts['failed']++;
            } else {
                $recorded = self::record($attempt->idempotency_key, $booking, 0);
                $counts[$recorded['outcome'] === 'failed' ? 'failed' : 'recovered']++;
            }
        }
        return $counts;
    }

    /** Step 3: record the calendar's booking (guard.record_booking). @return array<string, mixed> */
    private static function record(string $key, array $booking, int $calendarCalls = 1): array
    {
        $recorded = Capsule::connection()->selectOne(
            'SELECT outcome, appointment_id, review_item_id, reason'
            . ' FROM guard.record_booking(?, ?, ?, ?, ?::jsonb, ?, ?)',
            [
                $key,
                $booking['uid'],
                $booking['starts_at'] ?? null,
                $booking['ends_at'] ?? null,
                json_encode($booking['details'] ?? new stdClass()),
                'retell_webhook',
                $calendarCalls,
            ]
        );
        return (array) $recorded;
    }
}
