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
        $recorded = $db->selectOne(
            'SELECT outcome, appointment_id, review_item_id, reason'
            . ' FROM guard.record_booking(?, ?, ?, ?, ?::jsonb, ?, ?)',
            [
                $key,
                $booking['uid'],
                $booking['starts_at'] ?? null,
                $booking['ends_at'] ?? null,
                json_encode($booking['details'] ?? new stdClass()),
                'retell_webhook',
                1,
            ]
        );
        return (array) $recorded;
    }
}
