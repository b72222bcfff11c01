-- Which runner holds an unfinished draw saga: the request that drives it or the recovery loop
-- claims it until this time (ParticipationRepository.claim_saga), so exactly one runs a step.
-- NULL: nobody holds it; a claim whose holder died runs out and is taken over.
ALTER TABLE draw_sagas ADD COLUMN claimed_until timestamptz;
